"""Signal conventions of the model side: training segments, loudness, crops, STFT, inference hop (docs/SPEC.md
sections 2, 7-9).

The data contract (sample rate, clip length, fps, frame size, keys, member names) is ``pipelines.contract``;
every module imports these names from one of the two and none retypes the numbers.
"""

from __future__ import annotations

SEGMENT_SAMPLES = 10_080  # 0.63 s training / inference window
TARGET_RMS = 0.1  # loudness of a segment (training) or of a window's mono (inference)
LOUDNESS_EPS = 1e-4  # released: the RMS is clamped to at least 1e-4 before scaling to TARGET_RMS
# released: a training segment starts uniformly in [0, 9.9 - 0.63) s of the 10 s clip
MAX_SEGMENT_START = 148_320  # int((9.9 - 0.63) x 16,000); starts are drawn in [0, MAX_SEGMENT_START)

# Crop fed to the network (from the 480x240 frame of the contract)
CROP_WIDTH = 448
CROP_HEIGHT = 224

# STFT (periodic Hann window, centered)
N_FFT = 512
WIN_LENGTH = 400
HOP_LENGTH = 160
N_FREQ = N_FFT // 2 + 1  # 257
N_SEGMENT_FRAMES = SEGMENT_SAMPLES // HOP_LENGTH + 1  # 64 STFT frames per segment
SPEC_OFFSET = 1e-12  # released: added to the network's input spectrograms, taken off the real part before iSTFT

# Inference
OFFICIAL_HOP_SAMPLES = 1_008  # released CCStereo code: int(0.1 x SEGMENT_SAMPLES)
PAPER_HOP_SAMPLES = 1_600  # paper text: 0.1 s
M2B_HOP_SAMPLES = 800  # 2.5D Visual Sound: 0.05 s
INFER_HOP_SAMPLES = OFFICIAL_HOP_SAMPLES  # the default (the official recipe)
