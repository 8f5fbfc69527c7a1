"""Microphone capture through PortAudio (pyaudio), for `mood-mirror stream --mic`.

pyaudio is imported only here and only when the microphone is used, so every other command
works without PortAudio. Its absence, or a machine without an input device, is a MicError
with one line that says what to do.
"""
import contextlib
import os
import sys

from audio import SAMPLE_RATE, SAMPLE_RATES  # what the model hears; the rates a live stream may declare

INSTALL_HINT = ("pyaudio is not installed, so the microphone cannot be used: install PortAudio's headers "
                "(Debian/Ubuntu: apt-get install portaudio19-dev; macOS: brew install portaudio), "
                "then: pip install pyaudio==0.2.14")


class MicError(Exception):
    """A local problem with the microphone; the message is one line for the user."""


@contextlib.contextmanager
def _quiet_stderr():
    """PortAudio's ALSA and JACK back ends print pages of probing noise on stderr (fd 2) while
    they look for devices; hide it unless MOOD_MIRROR_DEBUG is set."""
    if os.environ.get("MOOD_MIRROR_DEBUG"):
        yield
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _pyaudio():
    try:
        import pyaudio
    except ImportError:
        raise MicError(INSTALL_HINT) from None
    return pyaudio


class Microphone:
    """PortAudio opened once: its input devices, and a capture stream on one of them."""

    def __init__(self):
        self.pyaudio = _pyaudio()
        with _quiet_stderr():
            self.audio = self.pyaudio.PyAudio()
        self.stream = None

    def close(self):
        if self.stream is not None:
            with contextlib.suppress(Exception):
                self.stream.stop_stream()
                self.stream.close()
            self.stream = None
        with _quiet_stderr():
            self.audio.terminate()

    def __enter__(self):
        return self

    def __exit__(self, *_exc):
        self.close()

    def default_input_index(self):
        try:
            return self.audio.get_default_input_device_info()["index"]
        except (IOError, OSError):
            return None

    def input_devices(self):
        """Every device with input channels: dicts with index, name, channels, rate, host_api, default."""
        default = self.default_input_index()
        devices = []
        for index in range(self.audio.get_device_count()):
            info = self.audio.get_device_info_by_index(index)
            if info.get("maxInputChannels", 0) < 1:
                continue
            host = self.audio.get_host_api_info_by_index(info["hostApi"])["name"]
            devices.append({"index": index, "name": info["name"], "channels": int(info["maxInputChannels"]),
                            "rate": int(info["defaultSampleRate"]), "host_api": host, "default": index == default})
        return devices

    def choose(self, device=None):
        """The input device named by `device` (an index, or part of a name), else the default."""
        devices = self.input_devices()
        if not devices:
            raise MicError("no audio input device found (PortAudio sees none): connect a microphone, "
                           "or stream a recording with --file")
        if device is None:
            for candidate in devices:
                if candidate["default"]:
                    return candidate
            return devices[0]
        if str(device).isdigit():
            for candidate in devices:
                if candidate["index"] == int(device):
                    return candidate
            raise MicError(f"no input device with index {device}; see: mood-mirror stream --mic --list-devices")
        matches = [d for d in devices if str(device).lower() in d["name"].lower()]
        if len(matches) != 1:
            problem = "no input device" if not matches else f"{len(matches)} input devices"
            raise MicError(f"{problem} named like {device!r}; see: mood-mirror stream --mic --list-devices")
        return matches[0]

    def supports(self, device, rate):
        try:
            return bool(self.audio.is_format_supported(rate, input_device=device["index"], input_channels=1,
                                                       input_format=self.pyaudio.paInt16))
        except ValueError:
            return False

    def pick_rate(self, device, rate=None):
        """`rate` if given; else 16 kHz (what the model hears) when the device takes it, else the
        device's own default rate when the server accepts it, else the first accepted one."""
        if rate is not None:
            if not self.supports(device, rate):
                raise MicError(f"input device {device['index']} ({device['name']}) does not record at {rate} Hz")
            return rate
        for candidate in (SAMPLE_RATE, device["rate"], 48000, 44100, *SAMPLE_RATES):
            if candidate in SAMPLE_RATES and self.supports(device, candidate):
                return candidate
        raise MicError(f"input device {device['index']} ({device['name']}) records at none of the rates "
                       f"the server takes ({', '.join(map(str, SAMPLE_RATES))} Hz)")

    def open(self, device, rate, chunk_frames):
        """Start capturing mono 16-bit PCM; read() then returns `chunk_frames` frames as bytes."""
        try:
            with _quiet_stderr():
                self.stream = self.audio.open(format=self.pyaudio.paInt16, channels=1, rate=rate, input=True,
                                              input_device_index=device["index"], frames_per_buffer=chunk_frames)
        except (IOError, OSError, ValueError) as exc:
            raise MicError(f"cannot open input device {device['index']} ({device['name']}) "
                           f"at {rate} Hz: {exc}") from None
        self.chunk_frames = chunk_frames
        return self

    def read(self):
        try:
            return self.stream.read(self.chunk_frames, exception_on_overflow=False)
        except (IOError, OSError) as exc:
            raise MicError(f"the microphone stopped: {exc}") from None
