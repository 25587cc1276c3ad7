"""SOFA HRIR files (SPEC section 5): validation, ear order from ReceiverPosition, one-line errors before any
video is prepared."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from pipelines.ambisonics import decode_foa_to_binaural, encode_plane_wave
from pipelines.cli import main
from pipelines.hrir import HRIRUnavailable, load_hrirs, load_kemar, load_sofa
from tests.helpers.sofa import LEFT_FIRST, write_sofa

SR = 16_000


@pytest.fixture(scope="module")
def kemar44():
    return load_kemar(44_100)  # the measured rate: what a SOFA export of KEMAR would hold


def _write(tmp_path, kemar, name="k.sofa", irs=None, **kw):
    kw.setdefault("samplerate", kemar.samplerate)
    return write_sofa(tmp_path / name, kemar.irs if irs is None else irs, kemar.azimuth_deg, kemar.elevation_deg,
                      **kw)


def test_sofa_file_decodes_like_the_kemar_set(tmp_path, kemar44):
    n = kemar44.irs.shape[2]
    for rate in (44_100, 48_000, 96_000):  # a 1 kHz tone as every IR, at each rate: still 1 kHz at 16 kHz
        tone = np.sin(2 * np.pi * 1000 * np.arange(n) / rate) * np.hanning(n)
        irs = np.broadcast_to(tone, kemar44.irs.shape).copy()
        h = load_sofa(_write(tmp_path, kemar44, irs=irs, samplerate=rate), SR)
        assert h.samplerate == SR and h.irs.shape[2] == -(-n * SR // rate)
        spectrum = np.abs(np.fft.rfft(h.irs[0, 0], 4096))
        assert abs(np.fft.rfftfreq(4096, 1 / SR)[np.argmax(spectrum)] - 1000) < 8
    h = load_hrirs(f"sofa:{_write(tmp_path, kemar44)}", SR)
    np.testing.assert_allclose(h.irs, load_kemar(SR).irs, atol=1e-12)
    cart = load_sofa(_write(tmp_path, kemar44, "c.sofa", source_type="cartesian"), SR)
    np.testing.assert_allclose(cart.azimuth_deg, h.azimuth_deg, atol=1e-6)
    np.testing.assert_allclose(cart.elevation_deg, h.elevation_deg, atol=1e-6)


def test_right_first_file_keeps_the_left_source_on_the_left(tmp_path, kemar44):
    swapped = _write(tmp_path, kemar44, "right-first.sofa", irs=kemar44.irs[:, ::-1], receivers=LEFT_FIRST[::-1])
    h = load_sofa(swapped, SR)
    np.testing.assert_allclose(h.irs, load_kemar(SR).irs, atol=1e-12)  # channel 0 is the left ear again
    noise = np.random.default_rng(0).standard_normal(SR)
    out = decode_foa_to_binaural(encode_plane_wave(noise, 90.0), hrirs=h)  # a source on the left
    ild = 10 * np.log10(np.mean(out[0] ** 2) / np.mean(out[1] ** 2))
    assert ild > 10.0, ild
    # control: the same swapped IRs labelled left-first put the source on the right
    wrong = load_sofa(_write(tmp_path, kemar44, "mislabelled.sofa", irs=kemar44.irs[:, ::-1]), SR)
    out = decode_foa_to_binaural(encode_plane_wave(noise, 90.0), hrirs=wrong)
    assert 10 * np.log10(np.mean(out[0] ** 2) / np.mean(out[1] ** 2)) < -10.0


def _nan_irs(kemar):
    irs = kemar.irs.copy()
    irs[17, 1, 40] = np.nan
    return irs


def _silent_ear(kemar):
    irs = kemar.irs.copy()
    irs[3, 0] = 0.0
    return irs


@pytest.mark.parametrize("case, match", [
    ({"samplerate": 0.0}, "Data.SamplingRate must be one positive value"),
    ({"samplerate": -44_100.0}, "Data.SamplingRate must be one positive value"),
    ({"irs": _nan_irs}, "NaN or infinite samples in 1 measurement.*index 17"),
    ({"irs": _silent_ear}, "all zeros for an ear.*index 3"),
    ({"convention": "GeneralFIR"}, "SOFA convention GeneralFIR"),
    ({"receivers": None}, "not a readable SOFA"),
    ({"receivers": np.zeros((2, 3))}, "does not tell the ears apart"),
    ({"irs": lambda k: k.irs[:, :1]}, r"Data.IR must be \[M, 2, N\]"),
])
def test_bad_sofa_files_are_one_line_errors(tmp_path, kemar44, case, match):
    case = dict(case)
    if callable(case.get("irs")):
        case["irs"] = case["irs"](kemar44)
    path = _write(tmp_path, kemar44, **case)
    with pytest.raises(HRIRUnavailable, match=match) as err:
        load_sofa(path, SR)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_not_a_sofa_file(tmp_path):
    junk = tmp_path / "junk.sofa"
    junk.write_bytes(b"not hdf5" * 10)
    with pytest.raises(HRIRUnavailable, match="junk.sofa: not a readable SOFA"):
        load_sofa(junk)
    with pytest.raises(HRIRUnavailable, match="not found"):
        load_sofa(tmp_path / "missing.sofa")


def test_prepare_refuses_a_bad_hrir_file_before_any_video(tmp_path, kemar44):
    bad = _write(tmp_path, kemar44, "nan.sofa", irs=_nan_irs(kemar44))
    (tmp_path / "yt-music" / "ledger").mkdir(parents=True)
    result = CliRunner().invoke(main, ["prepare", "yt-music", "--root", str(tmp_path), "--hrir", f"sofa:{bad}",
                                       "--no-progress"])
    assert result.exit_code == 1
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and "nan.sofa" in lines[0] and "NaN" in lines[0] and "Traceback" not in result.output
    assert not (tmp_path / "yt-music" / "ledger" / "prepare.jsonl").exists()  # no video was touched
