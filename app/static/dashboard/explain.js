// What each number on the dashboard means, next to where it is shown: a term marked
// data-explain="<key>" gets a small "?" button that shows its explanation (and a tooltip).
const EXPLANATIONS = {
  emotion:
    "The emotion the model hears most in the last 3-second window, with how sure it is: its probability for that emotion. Below 40 % it is marked uncertain: a guess, not a finding.",
  confidence:
    "How sure the model is of this window: its probability for the top emotion. Below 40 % the reading is marked uncertain, a guess rather than a finding.",
  share: "How often each emotion came out on top: the part of all readings (not a confidence).",
  valence: "How pleasant the emotion sounds, from −1 (unpleasant: angry, sad, afraid) through 0 to +1 (pleasant: happy, calm).",
  arousal: "How energetic the emotion sounds, from −1 (calm, tired) through 0 to +1 (excited, angry, afraid).",
  intensity: "How strongly the emotion is expressed, from 0 (barely) to 1 (fully).",
  light: "The colour a connected lamp would show for this mood, as a web colour code (#red green blue in hexadecimal).",
  pattern: "The moving pattern behind this panel, which follows the mood: its kind and how many particles it draws (more and faster when arousal is high).",
  lag: "Windows the analysis skipped to stay live when it fell behind; none means every second was analysed.",
  windows: "3-second pieces of audio analysed, one starting every second; silent ones carry no emotion.",
  volatility:
    "How much the mood moves from one reading to the next: the mean step in valence and arousal. Low is below 0.10, moderate below 0.30, high above.",
  dominant: "The emotion on top in the most readings of the session.",
  duration: "How long the session or recording lasts.",
  people: "People whose readings arrived in the last few minutes.",
  trend: "Whether the mean valence of everyone went up or down over the last minutes, and by how much.",
};

let counter = 0;

/** Add the explanation button to one term (a <dt> or label) with data-explain. */
export function explain(term) {
  const text = EXPLANATIONS[term.dataset.explain];
  if (!text || term.querySelector(".explain")) return;
  counter += 1;
  const id = `explain-${counter}`;
  const button = document.createElement("button");
  button.type = "button";
  button.className = "explain";
  button.textContent = "?";
  button.title = text;
  button.setAttribute("aria-label", `What is ${term.textContent.trim().toLowerCase()}?`);
  button.setAttribute("aria-expanded", "false");
  button.setAttribute("aria-controls", id);
  const note = document.createElement("span");
  note.id = id;
  note.className = "explanation";
  note.hidden = true;
  note.textContent = text;
  button.addEventListener("click", () => {
    note.hidden = !note.hidden;
    button.setAttribute("aria-expanded", String(!note.hidden));
  });
  term.append(" ", button, note);
}

export function explainAll(root = document) {
  root.querySelectorAll("[data-explain]").forEach(explain);
}

/** A fact row (<div><dt/><dd/></div>) whose term is explained when `key` names an explanation. */
export function explainedFact(term, value, key) {
  const row = document.createElement("div");
  const dt = document.createElement("dt");
  const dd = document.createElement("dd");
  dt.textContent = term;
  dd.textContent = value;
  row.append(dt, dd);
  if (key) {
    dt.dataset.explain = key;
    explain(dt);
  }
  return row;
}
