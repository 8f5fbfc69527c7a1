// A recording converted in the browser before upload: decoded by Web Audio, resampled to
// 16 kHz, mixed down to mono and written as 16-bit PCM WAV (32 kB per second of audio). The
// model hears 16 kHz mono (the server converts everything to it), so nothing it uses is lost,
// and the longest recording the server analyses (MAX_AUDIO_SECONDS, 10 minutes: 19.2 MB) fits
// under its upload limit (MAX_UPLOAD_MB) whatever the original format, rate or channels.
export const RATE = 16000;

export function durationText(seconds) {
  const whole = Math.round(seconds);
  if (whole < 60) return `${seconds.toFixed(1)} s`;
  const minutes = Math.floor(whole / 60);
  const rest = whole % 60;
  return rest ? `${minutes} min ${rest} s` : `${minutes} min`;
}

class TooLong extends Error {
  constructor(seconds, maxSeconds) {
    super(`The recording is ${durationText(seconds)} long; at most ${durationText(maxSeconds)} can be analysed.`);
    this.code = "audio_too_long";
  }
}

function mono(buffer) {
  const out = new Float32Array(buffer.length);
  for (let channel = 0; channel < buffer.numberOfChannels; channel += 1) {
    const data = buffer.getChannelData(channel);
    for (let i = 0; i < data.length; i += 1) out[i] += data[i] / buffer.numberOfChannels;
  }
  return out;
}

function wav(samples) {
  const view = new DataView(new ArrayBuffer(44 + samples.length * 2));
  const text = (offset, value) => [...value].forEach((char, i) => view.setUint8(offset + i, char.charCodeAt(0)));
  text(0, "RIFF");
  view.setUint32(4, 36 + samples.length * 2, true);
  text(8, "WAVE");
  text(12, "fmt ");
  view.setUint32(16, 16, true);
  view.setUint16(20, 1, true); // PCM
  view.setUint16(22, 1, true); // mono
  view.setUint32(24, RATE, true);
  view.setUint32(28, RATE * 2, true);
  view.setUint16(32, 2, true);
  view.setUint16(34, 16, true);
  text(36, "data");
  view.setUint32(40, samples.length * 2, true);
  samples.forEach((value, i) => view.setInt16(44 + i * 2, Math.max(-1, Math.min(1, value)) * 0x7fff, true));
  return new Blob([view], { type: "audio/wav" });
}

/** The file to send: the 16 kHz mono WAV when that is smaller, else the file itself (also when
 * this browser cannot decode it: the server may still). Throws when the recording is too long. */
export async function compressForUpload(file, maxSeconds) {
  let decoded;
  try {
    decoded = await new OfflineAudioContext(1, 1, RATE).decodeAudioData(await file.arrayBuffer());
  } catch {
    return file;
  }
  if (decoded.duration > maxSeconds + 0.5) throw new TooLong(decoded.duration, maxSeconds);
  const converted = wav(mono(decoded));
  return converted.size < file.size ? new File([converted], file.name, { type: "audio/wav" }) : file;
}
