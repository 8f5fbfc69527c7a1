"""Hyper-parameters shared by training, serving and the web app.

Pure Python, no heavy imports: the web process imports this module.
"""

SAMPLE_RATE = 16000          # Hz, the model's input rate
WINDOW_SECONDS = 3.0         # one serving window
WINDOW_SAMPLES = int(SAMPLE_RATE * WINDOW_SECONDS)   # 48000
MIN_SECONDS = 0.25           # shorter input is rejected (AudioInputError)

# STFT / log-mel front end (computed inside the model graph with tf.signal)
STFT_WINDOW_SECONDS = 0.032  # 512 samples
STFT_HOP_SECONDS = 0.020     # 320 samples (50 frames/s: half the cost of a 10 ms hop)
STFT_WINDOW_SAMPLES = int(round(SAMPLE_RATE * STFT_WINDOW_SECONDS))
STFT_HOP_SAMPLES = int(round(SAMPLE_RATE * STFT_HOP_SECONDS))
FFT_LENGTH = 512
MEL_BANDS = 64
MEL_MIN_HZ = 60.0
MEL_MAX_HZ = 7800.0
LOG_OFFSET = 1e-6
FRAMES_PER_WINDOW = 1 + (WINDOW_SAMPLES - STFT_WINDOW_SAMPLES) // STFT_HOP_SAMPLES  # 149
# The served front end computes frames a second at a time: FRAME_CHUNK frames from
# FRAME_CHUNK_SAMPLES samples, the next chunk starting SAMPLE_RATE samples later. Frames depend
# on their own samples only, so windows a second apart share all but their last chunk's frames
# (ml/inference.py computes each frame of a recording or a stream once).
FRAME_CHUNK = SAMPLE_RATE // STFT_HOP_SAMPLES                                 # 50
FRAME_CHUNK_SAMPLES = (FRAME_CHUNK - 1) * STFT_HOP_SAMPLES + STFT_WINDOW_SAMPLES  # 16192
# The .tflite's two signatures (ml/model.py to_tflite): a chunk's frames, and a window's reading.
FRAMES_SIGNATURE, CLASSIFY_SIGNATURE = "frames", "classify"

# Pitch view (same frames, same power spectrum): the normalised autocorrelation of each
# frame on a log-spaced grid of lags (PITCH_MIN_HZ..PITCH_MAX_HZ); its peak gives the frame's
# log F0 and periodicity.  The FFT's circular autocorrelation adds the lag FFT_LENGTH - lag,
# where the Hann window leaves little; a zero-padded FFT would avoid it at 1.5x the front
# end's cost.  Speaker-relative pitch and loudness dynamics carry emotion across languages
# better than the spectrum does (ml/MODEL_CARD.md).
PITCH_MIN_HZ = 65.0          # the longest lag must stay under FFT_LENGTH / 2
PITCH_MAX_HZ = 400.0
PITCH_LAGS = 64              # about half a semitone apart
VOICED_PERIODICITY = 0.5     # a speech frame whose periodicity exceeds this is voiced

# One frame's features: MEL_BANDS log-mel values, then log F0 (ln Hz), then periodicity.
LOG_F0 = MEL_BANDS
PERIODICITY = MEL_BANDS + 1
FRAME_FEATURES = MEL_BANDS + 2

# Silence gate: a window whose active-frame share is below MIN_ACTIVE_FRACTION
# (frames of 32 ms whose RMS exceeds SILENCE_RMS_DBFS) is labelled "silence".
SILENCE_RMS_DBFS = -50.0
SILENCE_MIN_ACTIVE_FRACTION = 0.10

# Class order is part of the model's contract (output index i == CLASSES[i]).
CLASSES = ("neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised")
NUM_CLASSES = len(CLASSES)

SEED = 20260

# A reading whose top (calibrated) probability is below this is flagged "uncertain":
# shown as a guess, not a finding.  Chosen on the LOCO reliability diagrams
# (docs/model/reliability_loco.png): below it, fewer than half of the top classes are right.
UNCERTAIN_BELOW = 0.40
