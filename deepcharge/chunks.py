"""The sizes that bound memory: how many probes (or values) one pass holds, named for what they bound.

Each is a memory bound, not a result: any size gives the same numbers (up to the order of float sums).
"""

# probes per neighbour search when model inputs are built (training, statistics, neighbor-stat): bounds the
# candidate probe-atom pairs held at once
NEIGHBOUR_SEARCH_CHUNK = 16384
# probes per forward pass when training evaluates its monitor probes (and the default of
# validation_data.batch_size): bounds the activations of one evaluation pass
EVALUATION_CHUNK = 8192
# probes per descriptor evaluation while the model statistics are computed: bounds the three-body terms
STATISTICS_CHUNK = 4096
# grid points per chunk of a frozen model's prediction (predict, test, compare, model-devi): bounds one
# neighbour search and the inputs built from it
PREDICTION_CHUNK = 8192
# float64 values per read when a spooled grid (model-devi's deviation) is copied into its file
SPOOL_CHUNK = 1 << 16
