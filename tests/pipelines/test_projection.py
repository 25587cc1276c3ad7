"""Projection geometry, the hypothesis-comparing detector, the decision rules and the override file (SPEC 3.5)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pipelines import sphere
from pipelines.contract import frame_member
from pipelines.media import grab_frames
from pipelines.projection import (
    DETECT_HEIGHT,
    DETECT_WIDTH,
    OVERRIDE_CONFIDENCE,
    Detection,
    Override,
    OverrideError,
    cubemap_structure,
    decide_projection,
    detect_projection,
    load_overrides,
    metadata_label,
)
from pipelines.shards import jpeg_bytes
from pipelines.synth.encode import VideoFormat, encode_media
from pipelines.synth.textures import panorama, yawed
from pipelines.verify import CUBEMAP_CHECK_FRAMES, cubemap_problems
from tests.helpers.prepare_world import convert_image


@pytest.fixture(scope="module")
def pano():
    return panorama("photos", np.random.default_rng(7), 1024, 512)


def test_sphere_mapping_is_ffmpeg_v360s(pano):
    """The numpy EAC layout equals what ffmpeg's v360 writes and reads (the layout prepare relies on)."""
    eac_ff = convert_image(pano, "v360=input=e:output=eac:w=768:h=512", 768, 512).astype(float)
    err = np.abs(sphere.er_to_eac(pano, 768, 512) - eac_ff).mean()  # bilinear vs ffmpeg's interpolation
    assert err < 2.0
    # control: the same picture turned by 90 degrees is far away, so the comparison can fail
    assert np.abs(sphere.er_to_eac(yawed(pano, 90), 768, 512) - eac_ff).mean() > 10 * err
    er_ff = convert_image(eac_ff.astype(np.uint8), "v360=input=eac:output=e:w=1024:h=512", 1024, 512).astype(float)
    assert np.abs(sphere.eac_to_er(eac_ff, 1024, 512) - er_ff).mean() < 2.0
    assert np.abs(sphere.er_to_eac(pano, 768, 512, pad=0) - eac_ff).mean() > 2 * err  # ffmpeg's 2-pixel margin
    # pixel -> direction -> pixel round trips in both layouts
    xs, ys = np.meshgrid(np.arange(0, 768, 7.0), np.arange(0, 512, 5.0))
    back = sphere.eac_pixel(sphere.eac_direction(xs, ys, 768, 512), 768, 512)
    np.testing.assert_allclose(back, (xs, ys), atol=1e-6)
    back = sphere.er_pixel(sphere.er_direction(xs, ys, 1024, 512), 1024, 512)
    np.testing.assert_allclose(back, (xs, ys), atol=1e-6)


def _encoded(tmp_path, pano, projection, size, yaws, name):
    vf = f"v360=input=e:output=eac:w={size[0]}:h={size[1]}" if projection == "EAC" else f"scale={size[0]}:{size[1]}"
    path = tmp_path / f"{name}.mkv"
    encode_media(path, "matroska", (yawed(pano, y).tobytes() for y in yaws),
                 VideoFormat(pano.shape[1], pano.shape[0], 1, vf, 23), None, None)
    return grab_frames(path, [float(k) for k in range(len(yaws))], width=DETECT_WIDTH, height=DETECT_HEIGHT)


@pytest.mark.parametrize("kind", ["photos", "room-face-edges", "dark-room", "low-texture"])
def test_detector_on_natural_frames_in_both_projections(tmp_path, kind):
    """Photographs, rooms whose vertical edges sit on the EAC face borders, dark and nearly flat scenes: each
    projection at a YouTube size is told apart, frame by frame and with a confidence that may override."""
    pano = panorama(kind, np.random.default_rng(3), 1024, 512)
    for projection, size in (("ER", (1280, 640)), ("EAC", (960, 640)), ("ER", (1280, 720)), ("EAC", (1536, 1024))):
        frames = _encoded(tmp_path, pano, projection, size, (0.0, 130.0), f"{kind}-{projection}-{size[0]}")
        assert len(frames) == 2
        for f in frames:
            single = detect_projection([f])
            assert single.label == projection, (kind, projection, size, single)
        det = detect_projection(frames)
        assert det.label == projection and det.confidence >= OVERRIDE_CONFIDENCE, (kind, projection, size, det)
        assert (det.scores["evidence"] > 0) == (projection == "EAC")
        true, false = ("mismatch_EAC", "mismatch_ER") if projection == "EAC" else ("mismatch_ER", "mismatch_EAC")
        assert 2 * det.scores[true] < det.scores[false]  # only the true reading's neighbours look alike


def test_flat_and_repeated_frames(pano):
    flat = np.full((DETECT_HEIGHT, DETECT_WIDTH, 3), 128, np.uint8)
    det = detect_projection([flat, flat.copy()])
    assert det.n_frames == 1 and abs(det.scores["evidence"]) < 1e-9 and det.confidence == pytest.approx(0.5)
    assert detect_projection([]).label is None
    frame = convert_image(pano, f"scale={DETECT_WIDTH}:{DETECT_HEIGHT}", DETECT_WIDTH, DETECT_HEIGHT)
    one, three = detect_projection([frame]), detect_projection([frame, frame.copy(), frame.copy()])
    assert three.n_frames == 1 and three.confidence == one.confidence  # a still picture is one piece of evidence
    # a flat frame has no evidence, so the upstream label stands even when the detector leans the other way
    d = decide_projection("x", upstream="EAC", metadata=None, detection=det)
    assert (d.final, d.source) == ("EAC", "upstream")


def _det(label, confidence, evidence):
    return Detection(label, confidence, {"evidence": evidence, "spread": 0.1, "mismatch_ER": 1.0,
                                         "mismatch_EAC": 1.0}, 12)


def test_decision_keeps_the_upstream_label_unless_the_evidence_is_strong():
    d = decide_projection("x", upstream="EAC", metadata=None, detection=_det("EAC", 0.9999, 2.0))
    assert (d.final, d.source) == ("EAC", "upstream") and "kept" in d.reason and not d.differs_from_upstream
    d = decide_projection("x", upstream="EAC", metadata=None, detection=_det("ER", 0.999999, -2.0))
    assert (d.final, d.source) == ("ER", "detector") and d.differs_from_upstream and "replaced" in d.reason
    assert d.detector_confidence == pytest.approx(0.999999) and d.detector_frames == 12
    for weak in (_det("ER", 0.99, -2.0), _det("ER", 0.99999, -0.3)):  # not sure enough, or too little evidence
        d = decide_projection("x", upstream="EAC", metadata=None, detection=weak)
        assert (d.final, d.source) == ("EAC", "upstream") and "below" in d.reason
    d = decide_projection("x", upstream=None, metadata=None, detection=_det("EAC", 0.95, 1.0))
    assert (d.final, d.source) == ("EAC", "detector")
    d = decide_projection("x", upstream=None, metadata=None, detection=_det("EAC", 0.6, 0.1))
    assert (d.final, d.source) == ("ER", "default") and "unsure" in d.reason


def test_decision_order():
    strong = _det("EAC", 0.999999, 3.0)
    over = Override("ER", "issue #13")
    d = decide_projection("2d-3lo5BVVY", upstream="EAC", metadata="EAC", detection=strong, override=over)
    assert (d.final, d.source, d.override_reason) == ("ER", "override", "issue #13")
    assert d.detector == "EAC"  # the detector's answer stays on record
    d = decide_projection("x", upstream="EAC", metadata="ER", detection=strong)
    assert (d.final, d.source) == ("ER", "metadata")
    d = decide_projection("x", upstream="ER", metadata=None, detection=None)
    assert (d.final, d.source, d.detector) == ("ER", "upstream", None)


def test_cubemap_structure_flags_unconverted_eac_frames(pano):
    """verify's check: an EAC frame squashed to 480x240 instead of converted is found; converted ones pass."""
    eac = convert_image(pano, "v360=input=e:output=eac:w=960:h=640", 960, 640)
    squashed = convert_image(eac, "scale=480:240:flags=area", 480, 240)
    converted = convert_image(eac, "v360=input=eac:output=e:w=480:h=240", 480, 240)
    found = cubemap_structure([squashed])
    assert found is not None and found.label == "EAC"
    assert cubemap_structure([converted]) is None
    assert cubemap_structure([convert_image(pano, "scale=480:240:flags=area", 480, 240)]) is None


def test_verify_flags_prepared_360_clips_that_still_show_a_cubemap(pano):
    eac = convert_image(pano, "v360=input=e:output=eac:w=960:h=640", 960, 640)
    squashed = convert_image(eac, "scale=480:240:flags=area", 480, 240)
    converted = convert_image(eac, "v360=input=eac:output=e:w=480:h=240", 480, 240)

    def members(frame, projection):
        meta = json.dumps({"projection": projection}).encode()
        return {"json": meta, **{frame_member(k): jpeg_bytes(frame) for k in CUBEMAP_CHECK_FRAMES}}

    problems = cubemap_problems(members(squashed, "ER"))
    assert len(problems) == 1 and "cubemap (EAC) layout" in problems[0] and "prepared as ER" in problems[0]
    assert cubemap_problems(members(converted, "EAC")) == []
    assert cubemap_problems(members(squashed, None)) == []  # ordinary video: nothing to check


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
