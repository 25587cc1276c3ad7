"""Projection detector, decision order and override file (SPEC section 3)."""

from __future__ import annotations

import numpy as np
import pytest

from pipelines.projection import (
    POLE_EAC_RATIO,
    SEAM_EAC_RATIO,
    WRAP_EAC_RATIO,
    Detection,
    Override,
    OverrideError,
    decide_projection,
    detect_projection,
    load_overrides,
    metadata_label,
)
from tests.helpers.prepare_world import convert_image, eqr_scene, eqr_to_eac


def as_480x240(img: np.ndarray) -> np.ndarray:
    return convert_image(img, "scale=480:240:flags=area", 480, 240)


@pytest.fixture(scope="module")
def scenes():
    eqr = [eqr_scene(640, 320, seed=s) for s in range(3)]
    return eqr, [eqr_to_eac(e) for e in eqr]


def test_detector_tells_eqr_from_eac(scenes):
    eqr, eac = scenes
    for e, c in zip(eqr, eac):
        de, dc = detect_projection([as_480x240(e)]), detect_projection([as_480x240(c)])
        assert de.label == "ER", de.scores
        assert dc.label == "EAC", dc.scores
        assert de.scores["wrap"] < WRAP_EAC_RATIO < dc.scores["wrap"]  # left/right wrap continuity only in ER
        assert de.scores["poles"] < POLE_EAC_RATIO < dc.scores["poles"]  # uniform pole rows only in ER
        assert dc.scores["seam"] > SEAM_EAC_RATIO  # the two EAC face rows meet at H/2


def test_detector_averages_over_frames_and_abstains_on_flat_frames(scenes):
    eqr, _ = scenes
    frames = [as_480x240(e) for e in eqr]
    det = detect_projection(frames)
    assert det.label == "ER" and det.n_frames == 3
    flat = np.full((240, 480, 3), 128, np.uint8)
    assert detect_projection([flat, flat]).label is None
    assert detect_projection([flat] + frames).n_frames == 3  # featureless frames do not vote


def test_decision_order():
    det_eac = Detection("EAC", {"wrap": 50.0, "poles": 0.8, "seam": 60.0}, {}, 3)
    over = Override("ER", "issue #13")
    d = decide_projection("2d-3lo5BVVY", upstream="EAC", metadata="EAC", detection=det_eac, override=over)
    assert (d.final, d.source, d.override_reason) == ("ER", "override", "issue #13")
    assert d.differs_from_upstream
    d = decide_projection("x", upstream="EAC", metadata="ER", detection=det_eac)
    assert (d.final, d.source) == ("ER", "metadata")
    d = decide_projection("x", upstream="ER", metadata=None, detection=det_eac)
    assert (d.final, d.source, d.detector_scores["wrap"]) == ("EAC", "detector", 50.0)
    d = decide_projection("x", upstream="EAC", metadata=None, detection=Detection(None, {}, {}, 0))
    assert (d.final, d.source) == ("EAC", "upstream")
    assert not d.differs_from_upstream


def test_metadata_labels():
    assert metadata_label("equirectangular") == "ER"
    assert metadata_label("cubemap") == "EAC"
    assert metadata_label(None) is None
    assert metadata_label("fisheye") is None


def test_override_file_has_the_known_facts():
    overrides = load_overrides()
    assert overrides["2d-3lo5BVVY"].projection == "ER"
    assert overrides["7WRsz_CAP5M"].projection == "ER"


@pytest.mark.parametrize(
    "body, match",
    [
        ('[videos."../etc/passwd"]\nprojection = "ER"\nreason = "x"\n', "invalid youtube id"),
        ('[videos.2d-3lo5BVVY]\nprojection = "cube"\nreason = "x"\n', "projection must be one of"),
        ('[videos.2d-3lo5BVVY]\nprojection = "ER"\n', "reason must be"),
        ("not toml [", "not valid TOML"),
    ],
)
def test_override_file_validation(tmp_path, body, match):
    p = tmp_path / "o.toml"
    p.write_text(body)
    with pytest.raises(OverrideError, match=match) as err:
        load_overrides(p)
    assert str(p) in str(err.value)
