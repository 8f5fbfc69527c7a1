// The environment response, shown: the light colour as the panel's background (with text in
// black or white, whichever contrasts more), a particle canvas following the visual pattern,
// and an optional ambient tone through WebAudio (off until the user turns it on).

const MAX_PARTICLES = 400;

function luminance(hex) {
  const channels = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16) / 255);
  const [r, g, b] = channels.map((c) => (c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4));
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
}

/** "#000000" or "#ffffff": the text colour with the higher WCAG contrast on this background. */
export function textColourOn(hex) {
  const l = luminance(hex);
  const onBlack = (l + 0.05) / 0.05;
  const onWhite = 1.05 / (l + 0.05);
  return onBlack >= onWhite ? "#000000" : "#ffffff";
}

export function contrastRatio(hexA, hexB) {
  const [a, b] = [luminance(hexA), luminance(hexB)].sort((x, y) => y - x);
  return (a + 0.05) / (b + 0.05);
}

export class Particles {
  constructor(canvas) {
    this.canvas = canvas;
    this.ctx = canvas.getContext("2d");
    this.visual = { type: "drift", particle_count: 40, speed: 0.3, palette: ["#9ca3af"] };
    this.particles = [];
    this.running = false;
    this.reduced = window.matchMedia && window.matchMedia("(prefers-reduced-motion: reduce)").matches;
    this.frame = this.frame.bind(this);
    new ResizeObserver(() => this.resize()).observe(canvas);
    this.resize();
  }

  resize() {
    const ratio = window.devicePixelRatio || 1;
    const { width, height } = this.canvas.getBoundingClientRect();
    this.width = Math.max(1, width);
    this.height = Math.max(1, height);
    this.canvas.width = Math.round(this.width * ratio);
    this.canvas.height = Math.round(this.height * ratio);
    this.ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  }

  set(visual) {
    this.visual = { ...this.visual, ...visual };
    const count = Math.min(MAX_PARTICLES, Math.max(0, Math.round(this.visual.particle_count || 0)));
    while (this.particles.length < count) this.particles.push(this.spawn());
    this.particles.length = count;
    const palette = this.visual.palette && this.visual.palette.length ? this.visual.palette : ["#9ca3af"];
    this.particles.forEach((p, i) => {
      p.colour = palette[i % palette.length];
    });
    this.canvas.dataset.pattern = this.visual.type;
    this.canvas.dataset.particles = String(count);
    this.start();
  }

  spawn() {
    return {
      x: Math.random() * this.width,
      y: Math.random() * this.height,
      angle: Math.random() * Math.PI * 2,
      radius: 1.5 + Math.random() * 3,
      phase: Math.random() * Math.PI * 2,
      colour: "#9ca3af",
    };
  }

  start() {
    if (!this.running) {
      this.running = true;
      requestAnimationFrame(this.frame);
    }
  }

  stop() {
    this.running = false;
  }

  // One step of motion per pattern; `v` is pixels per frame.
  move(p, v, t) {
    const { width: w, height: h } = this;
    const cx = w / 2;
    const cy = h / 2;
    switch (this.visual.type) {
      case "rain":
        p.y += v * 2;
        p.x += Math.sin(p.phase) * 0.2;
        break;
      case "waves":
        p.x += v;
        p.y += Math.sin(t / 600 + p.phase + p.x / 60) * v * 0.6;
        break;
      case "bloom":
      case "burst": {
        const dx = p.x - cx;
        const dy = p.y - cy;
        const d = Math.hypot(dx, dy) || 1;
        const push = this.visual.type === "burst" ? 2.2 : 1;
        p.x += (dx / d) * v * push;
        p.y += (dy / d) * v * push;
        if (d > Math.max(w, h) * 0.6) {
          p.x = cx + (Math.random() - 0.5) * 10;
          p.y = cy + (Math.random() - 0.5) * 10;
        }
        break;
      }
      case "pulse": {
        const scale = 1 + Math.sin(t / 180) * 0.015 * v;
        p.x = cx + (p.x - cx) * scale + (Math.random() - 0.5) * v;
        p.y = cy + (p.y - cy) * scale + (Math.random() - 0.5) * v;
        break;
      }
      case "flutter":
        p.angle += (Math.random() - 0.5) * 1.2;
        p.x += Math.cos(p.angle) * v * 1.5;
        p.y += Math.sin(p.angle) * v * 1.5;
        break;
      case "swirl": {
        const dx = p.x - cx;
        const dy = p.y - cy;
        const angle = Math.atan2(dy, dx) + 0.01 * v;
        const d = Math.hypot(dx, dy) * 0.999;
        p.x = cx + Math.cos(angle) * d;
        p.y = cy + Math.sin(angle) * d;
        if (d < 4) Object.assign(p, this.spawn());
        break;
      }
      default: // drift
        p.angle += (Math.random() - 0.5) * 0.1;
        p.x += Math.cos(p.angle) * v * 0.6;
        p.y += Math.sin(p.angle) * v * 0.6;
    }
    if (p.x < -10) p.x = w + 10;
    if (p.x > w + 10) p.x = -10;
    if (p.y < -10) p.y = h + 10;
    if (p.y > h + 10) p.y = -10;
  }

  frame(t) {
    if (!this.running) return;
    if (!this.canvas.isConnected || this.canvas.offsetParent === null) {
      // Hidden view: check again later without drawing.
      setTimeout(() => requestAnimationFrame(this.frame), 500);
      return;
    }
    const v = this.reduced ? 0 : (this.visual.speed || 0.3) * 1.2;
    this.ctx.clearRect(0, 0, this.width, this.height);
    this.ctx.globalAlpha = 0.75;
    for (const p of this.particles) {
      this.move(p, v, t);
      this.ctx.fillStyle = p.colour;
      this.ctx.beginPath();
      this.ctx.arc(p.x, p.y, p.radius, 0, Math.PI * 2);
      this.ctx.fill();
    }
    this.ctx.globalAlpha = 1;
    requestAnimationFrame(this.frame);
  }
}

export class AmbientTone {
  constructor() {
    this.context = null;
    this.oscillator = null;
    this.gain = null;
    this.settings = { base_frequency_hz: 220, waveform: "sine", volume: 0.2 };
  }

  get on() {
    return Boolean(this.oscillator);
  }

  async enable() {
    if (this.oscillator) return;
    this.context = this.context || new AudioContext();
    await this.context.resume();
    this.gain = this.context.createGain();
    this.gain.gain.value = 0;
    this.gain.connect(this.context.destination);
    this.oscillator = this.context.createOscillator();
    this.oscillator.connect(this.gain);
    this.oscillator.start();
    this.apply();
  }

  disable() {
    if (!this.oscillator) return;
    const now = this.context.currentTime;
    this.gain.gain.setTargetAtTime(0, now, 0.15);
    const oscillator = this.oscillator;
    this.oscillator = null;
    setTimeout(() => {
      oscillator.stop();
      oscillator.disconnect();
    }, 600);
  }

  set(audio) {
    this.settings = { ...this.settings, ...audio };
    this.apply();
  }

  apply() {
    if (!this.oscillator) return;
    const { base_frequency_hz: frequency, waveform, volume } = this.settings;
    const now = this.context.currentTime;
    if (["sine", "square", "sawtooth", "triangle"].includes(waveform)) this.oscillator.type = waveform;
    this.oscillator.frequency.setTargetAtTime(frequency || 220, now, 0.3);
    // The response's volume is for a room speaker; a quarter of it is plenty through headphones.
    this.gain.gain.setTargetAtTime(Math.min(0.6, volume || 0.2) * 0.25, now, 0.3);
  }
}

/** Paint a panel in the light's colour, keeping its text readable. */
export function applyLight(panel, lighting) {
  if (!lighting || !/^#[0-9a-f]{6}$/i.test(lighting.hex || "")) return;
  panel.style.setProperty("--env-bg", lighting.hex);
  panel.style.setProperty("--env-fg", textColourOn(lighting.hex));
  panel.style.setProperty("--env-transition", `${Math.min(4000, lighting.transition_ms || 800)}ms`);
  panel.dataset.light = lighting.hex;
}
