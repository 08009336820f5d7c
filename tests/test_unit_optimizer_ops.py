"""Vector operations per parameter of every modelled optimizer (hwsim/sim/update.py ``Optimizer``), written out
from the module's table: every optimizer converts δW (1 mul) and makes the MAC-width copy of W (1 mul, 1 compare);
then sgd 1 fma; momentum 2 fma (+1 Nesterov); adam/adamw 3 mul, 4 fma, 1 sqrt, 1 div; weight decay 1 fma
(adamw, decoupled: 1 mul)."""

from __future__ import annotations

import pytest

from hwsim.arch.update import OPTIMIZERS
from hwsim.sim.update import Optimizer


@pytest.mark.parametrize("kind,decay,nesterov,ops,states", [
    ("sgd", False, False, {"mul": 2, "compare": 1, "fma": 1}, 0),
    ("sgd", True, False, {"mul": 2, "compare": 1, "fma": 2}, 0),
    ("sgd_momentum", False, False, {"mul": 2, "compare": 1, "fma": 2}, 1),
    ("sgd_momentum", False, True, {"mul": 2, "compare": 1, "fma": 3}, 1),
    ("sgd_momentum", True, True, {"mul": 2, "compare": 1, "fma": 4}, 1),
    ("adam", False, False, {"mul": 5, "compare": 1, "fma": 4, "sqrt": 1, "div": 1}, 2),
    ("adam", True, False, {"mul": 5, "compare": 1, "fma": 5, "sqrt": 1, "div": 1}, 2),
    ("adamw", True, False, {"mul": 6, "compare": 1, "fma": 4, "sqrt": 1, "div": 1}, 2),
])
def test_operations_and_states_per_parameter(kind, decay, nesterov, ops, states):
    o = Optimizer(kind, weight_decay=decay, nesterov=nesterov, source="test")
    assert o.ops_per_param() == ops and o.states == states
    assert o.to_json() == {"optimizer": kind, "states": states, "weight_decay": decay, "nesterov": nesterov,
                           "from": "test"}


def test_every_modelled_optimizer_is_in_the_table_and_others_are_refused():
    assert set(OPTIMIZERS) == {"sgd", "sgd_momentum", "adam", "adamw"}
    with pytest.raises(ValueError, match=r"^optimizer 'rmsprop' is not modelled; allowed: sgd, sgd_momentum, adam, "
                                         r"adamw$"):
        Optimizer("rmsprop")
