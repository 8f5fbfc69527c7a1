"""Pure audio, shared by the web process, the workers and the `mood-mirror` client: decoding
recordings (audio.decode), live PCM streams (audio.pcm) and windows (audio.windows). No Flask,
MongoEngine or TensorFlow; this package itself imports nothing, so the constants below cost
nothing to import.
"""

# Every stream and recording is converted to mono float32 at this rate: the model's input rate
# (ml/params.py SAMPLE_RATE says the same for the model's side).
SAMPLE_RATE = 16000
# The rates a live stream may declare; anything else is converted to SAMPLE_RATE on arrival.
SAMPLE_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)
# Analysis windows: 3 s long, one every 1 s of audio (audio/windows.py says why).
WINDOW_SECONDS = 3.0
HOP_SECONDS = 1.0
