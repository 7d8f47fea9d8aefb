"""Saved model sections across deepcharge versions, upgraded in one place.

A checkpoint (``config_version`` beside its ``config``) and a frozen model (``config_version`` in its
metadata) record which version of the ``model`` section they hold; one written before versioning holds
version 0. :func:`upgrade_model_config` brings an older section up to :data:`CONFIG_VERSION` by adding the
keys introduced since, with the values that rebuild the model it was trained as, so model constructors
read plain keys. As DeePMD-kit's ``check_version_compatibility``, a newer version than this one reads is an
error.
"""

from deepcharge.errors import DeepChargeError

CONFIG_VERSION = 1
"""Version of the ``model`` section this deepcharge writes. Raise it, and add a step to
:func:`upgrade_model_config`, when a change needs older sections rewritten (e.g. a key whose absence must mean
something other than its schema default)."""


def _to_version_1(model: dict):
    """Keys added to pseudo_atom before versioning; absent, they meant the model as it was then: se_e2_a rows of
    order 1, no three-body terms, plain ResNet skips and a radial-only baseline."""
    if model["type"] == "pseudo_atom":
        model["descriptor"].setdefault("lmax", 1)
        model["descriptor"].setdefault("three_body", None)
        model["fitting_net"].setdefault("trainable_skip", False)
        model["fitting_net"].setdefault("baseline_three_body", False)


_UPGRADES = [_to_version_1]  # _UPGRADES[v] takes version v to v + 1


def upgrade_model_config(model: dict, version: int, source) -> dict:
    """``model``, a ``model`` section saved at configuration ``version``, as this deepcharge writes it (in place).
    ``source`` names the file for the error a newer version gets."""
    if version > CONFIG_VERSION:
        raise DeepChargeError(f"{source}: written by a newer deepcharge (model configuration version {version}; "
                              f"this one reads up to {CONFIG_VERSION}); upgrade deepcharge to read it")
    for upgrade in _UPGRADES[version:]:
        upgrade(model)
    return model
