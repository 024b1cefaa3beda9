"""The option and result classes bound from C++ field lists (bindings/bound.hpp, genprm/_bound.py)."""
import pickle

import pytest

import genprm
from genprm import _core


def test_keyword_construction_defaults_and_errors():
    o = genprm.BeamSearchOptions(beams=8, seed=3)
    assert o.beams == 8 and o.seed == 3 and o.width == genprm.BeamSearchOptions().width
    assert o.aggregation == "last" and o.sampling.temperature == 0.7  # float32 0.7 reads as 0.7
    with pytest.raises(ValueError, match="unknown option 'beam'"):
        genprm.BeamSearchOptions(beam=8)
    with pytest.raises(ValueError, match="option 'beams' has the wrong type"):
        genprm.BeamSearchOptions(beams="many")
    with pytest.raises(ValueError, match="expected an integer, got bool"):
        genprm.BeamSearchOptions(width=True)
    with pytest.raises(ValueError, match="divisible"):  # validate() runs
        genprm.BeamSearchOptions(beams=3, width=2)
    with pytest.raises(ValueError, match="aggregation"):
        genprm.BeamSearchOptions(aggregation="median")
    with pytest.raises(ValueError, match="GenPRMOptions.sandbox: unknown option 'timeout'"):
        genprm.GenPRMOptions(sandbox={"timeout": 3})


def test_nested_options_edit_in_place_and_dicts_update():
    o = genprm.BeamSearchOptions()
    o.sampling.top_p = 0.5
    assert o.sampling.top_p == 0.5
    g = genprm.GenPRMOptions(sandbox={"timeout_s": 2.0})
    assert g.sandbox.timeout_s == 2.0
    assert g.sandbox.preload == ["sympy", "numpy"]  # the other GenPRM sandbox defaults stay


def test_repr_dict_roundtrip_mapping_and_pickle():
    o = genprm.BeamSearchOptions(beams=8, seed=3)
    assert repr(o) == "BeamSearchOptions(beams=8, seed=3)"
    d = o.to_dict()
    assert d["sampling"]["temperature"] == 0.7 and d["step_delimiters"] == ["\n\n", "\nStep "]
    back = genprm.BeamSearchOptions.from_dict(d)
    assert back == o and back != genprm.BeamSearchOptions()
    assert pickle.loads(pickle.dumps(o)) == o
    assert o["beams"] == 8 and "seed" in o and o.get("nope", 1) == 1
    with pytest.raises(KeyError):
        o["nope"]
    s = _core.StepLabels(mc=0.5, label=True)
    assert s.to_dict()["label"] == 1  # labels as 0 / 1, as the reference writes them
    r = _core.LabelResult.from_dict({"id": "a", "labels": [1, 0], "steps": [{"step": 1, "mc": 0.25, "label": 1}]})
    assert r.steps[0].labels.mc == 0.25 and r.labels == [1, 0]
    assert "rollouts" not in r.to_dict()["steps"][0]  # empty, left out
    assert r.to_dict()["steps"][0]["mc"] == 0.25  # flattened


def test_every_bound_option_struct_default_constructs_and_round_trips():
    classes = [getattr(_core, n) for n in dir(_core) if hasattr(getattr(_core, n), "FIELDS")]
    assert len(classes) >= 30
    for cls in classes:
        x = cls()
        assert cls.from_dict(x.to_dict()) == x, cls.__name__
        assert pickle.loads(pickle.dumps(x)) == x, cls.__name__
