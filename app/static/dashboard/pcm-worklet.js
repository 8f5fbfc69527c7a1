// AudioWorklet: microphone input at the context's rate (usually 44.1 or 48 kHz, any channels)
// -> 16 kHz mono signed 16-bit little-endian frames of `frameMs` (default 1 s), posted to
// the main thread as transferable ArrayBuffers.
//
// Downsampling averages the input samples that fall into each output period (a box filter):
// cheap, and it removes most of what would alias above 8 kHz for speech. Mixing to mono
// averages the channels.

const TARGET_RATE = 16000;

class PcmDownsampler extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const frameMs = (options && options.processorOptions && options.processorOptions.frameMs) || 1000;
    this.frameSamples = Math.round((TARGET_RATE * frameMs) / 1000);
    this.step = sampleRate / TARGET_RATE; // input samples per output sample (>= 1 expected)
    this.position = 0; // input samples accumulated towards the next output sample
    this.sum = 0;
    this.count = 0;
    this.frame = new Int16Array(this.frameSamples);
    this.filled = 0;
    this.running = true;
    this.port.onmessage = (event) => {
      if (event.data === "flush") this.flush();
      if (event.data === "stop") {
        this.flush();
        this.running = false;
      }
    };
  }

  push(value) {
    const clipped = Math.max(-1, Math.min(1, value));
    this.frame[this.filled++] = clipped < 0 ? Math.round(clipped * 32768) : Math.round(clipped * 32767);
    if (this.filled === this.frameSamples) {
      this.port.postMessage(this.frame.buffer, [this.frame.buffer]);
      this.frame = new Int16Array(this.frameSamples);
      this.filled = 0;
    }
  }

  flush() {
    if (this.filled > 0) {
      const rest = this.frame.slice(0, this.filled);
      this.port.postMessage(rest.buffer, [rest.buffer]);
      this.frame = new Int16Array(this.frameSamples);
      this.filled = 0;
    }
  }

  process(inputs) {
    if (!this.running) return false;
    const input = inputs[0];
    if (!input || input.length === 0) return true;
    const channels = input.length;
    const length = input[0].length;
    for (let i = 0; i < length; i++) {
      let mono = 0;
      for (let c = 0; c < channels; c++) mono += input[c][i];
      mono /= channels;
      if (this.step <= 1) {
        // Input at or below 16 kHz (unusual): pass samples through unchanged.
        this.push(mono);
        continue;
      }
      this.sum += mono;
      this.count += 1;
      this.position += 1;
      if (this.position >= this.step) {
        this.push(this.sum / this.count);
        this.position -= this.step;
        this.sum = 0;
        this.count = 0;
      }
    }
    return true;
  }
}

registerProcessor("pcm-downsampler", PcmDownsampler);
