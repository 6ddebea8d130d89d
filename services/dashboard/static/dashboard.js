// Harpicoop dashboard: asks /api/overview every few seconds and draws the figures as tables and
// inline SVG. Nothing is loaded from elsewhere; every text is set with textContent.
"use strict";

const SVG_NS = "http://www.w3.org/2000/svg";
const NUMBER = new Intl.NumberFormat("fr-FR");
const DECIMAL = new Intl.NumberFormat("fr-FR", { maximumFractionDigits: 1 });
const TIME = new Intl.DateTimeFormat("fr-FR", {
  hour: "2-digit", minute: "2-digit", second: "2-digit", timeZone: "Europe/Paris",
});
const LONG_DAY = new Intl.DateTimeFormat("fr-FR", {
  weekday: "long", day: "numeric", month: "long", year: "numeric", timeZone: "UTC",
});

// Okabe–Ito colours: told apart with every common colour-vision deficiency.
const STAY_PARTS = [
  { key: "scheduled_admissions", label: "Admissions programmées", color: "#0072B2" },
  { key: "emergency_admissions", label: "Admissions en urgence", color: "#D55E00" },
  { key: "transfers", label: "Mutations", color: "#009E73" },
  { key: "discharges", label: "Sorties", color: "#E69F00" },
  { key: "corrections", label: "Corrections", color: "#56B4E9" },
  { key: "cancellations", label: "Annulations", color: "#CC79A7" },
  { key: "other", label: "Autres mouvements", color: "#9AA3AD" },
];
const EMAIL_PARTS = [
  { key: "sent", label: "Envoyés", color: "#0072B2" },
  { key: "failed", label: "En échec", color: "#B3261E" },
  { key: "waiting", label: "En attente", color: "#E69F00" },
];
// Covid-19 status at discharge, as said of the discharges ("sorties positives").
const COVID_STATUSES = [
  { key: "positive", label: "Positives", color: "#B3261E" },
  { key: "suspected", label: "Suspectes", color: "#E69F00" },
  { key: "negative", label: "Négatives", color: "#009E73" },
  { key: "not_tested", label: "Non testées", color: "#9AA3AD" },
  { key: "unknown", label: "Statut inconnu", color: "#C9CED6" },
];
const SERVICES = {
  dedup: "Déduplication",
  enrich: "Enrichissement (médecin traitant)",
  notify: "Envoi des courriels",
  covid: "Suivi Covid-19",
  analytics: "Comptages",
  "analytics-sql": "Comptages vers SQL",
};
// Sequential blues; numbers on the four light steps are dark, on the two dark steps white.
const HEAT = ["#EFF3FF", "#C6DBEF", "#9ECAE1", "#6BAED6", "#2171B5", "#08519C"];
const LAG_NORMAL = "#0072B2";
const LAG_OVER = "#B3261E";

const state = {
  chosenDay: null, shownDay: null, timer: null, refreshSeconds: 5, serial: 0, figures: null,
};

function count(value) {
  return NUMBER.format(value);
}

// A share of 0..1 (or null: nothing to divide) as a percentage.
function share(value) {
  return value === null || value === undefined ? "—" : `${Math.round(value * 100)}${UNIT_SPACE}%`;
}

// A rate of 0..1 as a percentage with one decimal: identity-vigilance rates are often below 1 %.
const RATE = new Intl.NumberFormat("fr-FR", { maximumFractionDigits: 1 });
function rate(value) {
  return value === null || value === undefined ? "—" : `${RATE.format(value * 100)}${UNIT_SPACE}%`;
}

// French typography: a narrow no-break space between a number and its unit.
const UNIT_SPACE = "\u202f";

function duration(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  if (seconds < 1) return `${NUMBER.format(Math.round(seconds * 1000))}${UNIT_SPACE}ms`;
  if (seconds < 60) return `${DECIMAL.format(seconds)}${UNIT_SPACE}s`;
  const minutes = Math.floor(seconds / 60);
  const rest = String(Math.round(seconds % 60)).padStart(2, "0");
  return `${NUMBER.format(minutes)}${UNIT_SPACE}min${UNIT_SPACE}${rest}${UNIT_SPACE}s`;
}

function clock(iso) {
  return TIME.format(new Date(iso));
}

function longDay(isoDate) {
  return LONG_DAY.format(new Date(`${isoDate}T00:00:00Z`));
}

function shiftDay(isoDate, days) {
  const moment = new Date(`${isoDate}T00:00:00Z`);
  moment.setUTCDate(moment.getUTCDate() + days);
  return moment.toISOString().slice(0, 10);
}

function html(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, value);
  for (const child of children) element.append(child);
  return element;
}

function svg(tag, attributes = {}, ...children) {
  const element = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, String(value));
  for (const child of children) element.append(child);
  return element;
}

function tooltip(text) {
  return svg("title", {}, text);
}

function chart(width, height, summary) {
  return svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": summary });
}

function setText(id, text) {
  document.getElementById(id).textContent = text;
}

// --- the heat map: one row per establishment, one column per local hour ---

function heatStep(value, peak) {
  if (value <= 0 || peak <= 0) return 0;
  return Math.min(HEAT.length - 1, 1 + Math.floor(((value - 1) / peak) * (HEAT.length - 1)));
}

function drawHeatmap(data, names) {
  const label = 300, cell = 36, row = 28, top = 26, totalColumn = 76;
  const hourly = data.stays.hourly;
  const width = label + 24 * cell + totalColumn;
  const height = top + hourly.length * row + 4;
  let busiest = null;
  for (const line of hourly) {
    line.counts.forEach((value, hour) => {
      if (!busiest || value > busiest.value) busiest = { value, hour, code: line.establishment };
    });
  }
  const summary = busiest && busiest.value > 0
    ? `Événements de séjour par heure : heure la plus chargée ${busiest.hour} h à ${names[busiest.code]} (${count(busiest.value)}).`
    : "Événements de séjour par heure : aucun événement ce jour-là.";
  const figure = chart(width, height, summary);
  for (let hour = 0; hour < 24; hour++) {
    figure.append(svg("text", {
      x: label + hour * cell + cell / 2, y: top - 8, "text-anchor": "middle", class: "axis",
    }, `${hour} h`));
  }
  figure.append(svg("text", { x: width - 6, y: top - 8, "text-anchor": "end", class: "axis" }, "Total"));
  hourly.forEach((line, index) => {
    const y = top + index * row;
    figure.append(svg("text", { x: label - 10, y: y + row / 2 + 5, "text-anchor": "end", "font-size": 13 },
      names[line.establishment]));
    line.counts.forEach((value, hour) => {
      const step = heatStep(value, data.stays.peak);
      const x = label + hour * cell;
      const group = svg("g", { "data-establishment": line.establishment, "data-hour": hour },
        svg("rect", { x: x + 1, y: y + 1, width: cell - 2, height: row - 2, rx: 3, fill: HEAT[step] }),
        tooltip(`${names[line.establishment]}, ${hour} h – ${hour + 1} h : ${count(value)} événement${value > 1 ? "s" : ""}`));
      if (value > 0) {
        group.append(svg("text", {
          x: x + cell / 2, y: y + row / 2 + 4, "text-anchor": "middle", "font-size": 12,
          class: step >= 4 ? "cell-dark" : "cell-light",
        }, count(value)));
      }
      figure.append(group);
    });
    const total = line.counts.reduce((sum, value) => sum + value, 0);
    figure.append(svg("text", {
      x: width - 6, y: y + row / 2 + 5, "text-anchor": "end", "font-size": 13, "font-weight": 700,
      "data-establishment": line.establishment, "data-column": "total",
    }, count(total)));
  });
  document.getElementById("heatmap").replaceChildren(figure);
}

// --- horizontal stacked bars, one per row; used for stays, emails, Covid statuses and lag ---

// A label cut to fit ``room`` pixels at 13 px, measured in the page's own font; the whole
// label stays in the element's tooltip.
const MEASURE = document.createElement("canvas").getContext("2d");

function fitted(text, room) {
  MEASURE.font = `13px ${getComputedStyle(document.body).fontFamily}`;
  if (MEASURE.measureText(text).width <= room) return text;
  let kept = text;
  while (kept.length > 1 && MEASURE.measureText(`${kept}…`).width > room) kept = kept.slice(0, -1);
  return `${kept.trimEnd()}…`;
}

function drawBars(containerId, rows, parts, options = {}) {
  // Drawn at the container's own width, so that the text is 13 px on any screen.
  const container = document.getElementById(containerId);
  const width = Math.max(container.clientWidth, 320);
  const right = Math.min(options.rightWidth || 90, width * 0.25);
  const label = Math.min(options.labelWidth || 300, width * 0.4);
  const row = 26;
  const height = rows.length * row + 8;
  const room = width - label - right;
  const largest = Math.max(1, options.scaleMax || 0,
    ...rows.map((line) => parts.reduce((sum, part) => sum + (line.values[part.key] || 0), 0)));
  const figure = chart(width, height, options.summary || "");
  if (options.threshold !== undefined) {
    const x = label + (options.threshold / largest) * room;
    figure.append(svg("line", {
      x1: x, x2: x, y1: 0, y2: height, stroke: "#1b1f24", "stroke-width": 1.5, "stroke-dasharray": "5 4",
    }, tooltip(`Seuil : ${count(options.threshold)}`)));
  }
  rows.forEach((line, index) => {
    const y = index * row + 4;
    const group = svg("g", line.attributes || {});
    group.append(svg("text", { x: label - 10, y: y + row / 2 + 3, "text-anchor": "end", "font-size": 13 },
      fitted(line.label, label - 10), tooltip(line.label)));
    let x = label, total = 0;
    for (const part of parts) {
      const value = line.values[part.key] || 0;
      total += value;
      if (value <= 0) continue;
      const length = (value / largest) * room;
      group.append(svg("rect", {
        x, y: y + 3, width: Math.max(length, 1.5), height: row - 8, fill: line.color || part.color,
      }, tooltip(`${line.label} — ${part.label} : ${count(value)}`)));
      x += length;
    }
    group.append(svg("text", {
      x: x + 6, y: y + row / 2 + 3, "font-size": 13, "font-weight": 700, class: line.over ? "over" : "",
    }, line.note || count(total)));
    figure.append(group);
  });
  container.replaceChildren(figure);
}

function drawLegend(containerId, parts) {
  document.getElementById(containerId).replaceChildren(...parts.map((part) => {
    const swatch = html("span", { class: "swatch", "aria-hidden": "true" });
    swatch.style.background = part.color;  // CSSOM, allowed by the page's CSP
    return html("span", { class: "legend-item" }, swatch, part.label);
  }));
}

// --- tables: the exact numbers behind the charts ---

function fillTable(tableId, lines, columns, names, totals, alertColumns = []) {
  const table = document.getElementById(tableId);
  const cells = (line, code) => columns.map((column) => {
    const value = line[column];
    const classes = alertColumns.includes(column) && value > 0 ? "num alert" : "num";
    const shown = column.endsWith("_share") ? share(value) : count(value);
    return html("td", { class: classes, "data-establishment": code, "data-column": column }, shown);
  });
  table.tBodies[0].replaceChildren(...lines.map((line) =>
    html("tr", {}, html("th", { scope: "row" }, names[line.establishment]), ...cells(line, line.establishment))));
  table.tFoot.replaceChildren(html("tr", {}, html("th", { scope: "row" }, "Total"), ...cells(totals, "total")));
}

// --- the page ---

function render(data) {
  state.figures = data;
  const names = Object.fromEntries(data.establishments.map((item) => [item.code, item.name]));
  const stays = data.stays.total, emails = data.emails.total, covid = data.covid.total;
  state.shownDay = data.day;
  state.refreshSeconds = data.refresh_seconds;

  const dayInput = document.getElementById("day");
  if (document.activeElement !== dayInput) dayInput.value = data.day;
  dayInput.max = data.today;
  document.getElementById("next-day").disabled = data.day >= data.today;
  const note = document.getElementById("day-note");
  note.replaceChildren("Jour affiché : ", html("strong", {}, longDay(data.day)));
  if (state.chosenDay === null && data.day !== data.today) {
    note.append(" — aucun événement de séjour aujourd'hui pour l'instant : voici le dernier jour d'activité.");
  }

  setText("updated-at", clock(data.generated_at));
  document.getElementById("updated-at").setAttribute("datetime", data.generated_at);
  setText("kpi-stay-events", count(stays.stay_events));
  setText("kpi-admissions", count(stays.admissions));
  setText("kpi-discharges", count(stays.discharges));
  setText("kpi-unroutable", count(stays.unroutable));
  setText("kpi-emails-sent", count(emails.sent));
  setText("kpi-emails-failed", count(emails.failed));
  document.getElementById("kpi-emails-failed").parentElement.classList.toggle("nonzero", emails.failed > 0);
  const latency = data.emails.latency_seconds;
  setText("kpi-latency", latency.count ? duration(latency.p50) : "—");
  setText("kpi-latency-p99", latency.count ? `99${UNIT_SPACE}% en moins de ${duration(latency.p99)}` : "");
  setText("kpi-covid-open", count(covid.open));

  drawHeatmap(data, names);

  drawLegend("stay-legend", STAY_PARTS);
  drawBars("stay-bars", data.stays.by_establishment.map((line) => ({
    label: names[line.establishment], values: line,
  })), STAY_PARTS, { summary: `Événements de séjour du jour par établissement et par type ; total ${count(stays.stay_events)}.` });
  fillTable("stay-table", data.stays.by_establishment,
    ["scheduled_admissions", "emergency_admissions", "transfers", "discharges", "corrections",
      "cancellations", "other", "unroutable", "stay_events"], names, stays);

  drawLegend("email-legend", EMAIL_PARTS);
  drawBars("email-bars", data.emails.by_establishment.map((line) => ({
    label: names[line.establishment], values: line,
  })), EMAIL_PARTS, {
    labelWidth: 290, rightWidth: 50,
    summary: `Courriels : ${count(emails.sent)} envoyés, ${count(emails.failed)} en échec, ${count(emails.waiting)} en attente.`,
  });
  fillTable("email-table", data.emails.by_establishment,
    ["sent", "failed", "waiting", "delivered_share", "read_share", "bounced", "unconfirmed"], names, emails,
    ["failed", "bounced", "unconfirmed"]);

  drawBars("covid-status-bars", COVID_STATUSES.map((status) => ({
    label: status.label,
    values: { [status.key]: covid[status.key] },
  })), COVID_STATUSES, {
    labelWidth: 150, rightWidth: 50,
    summary: `Statut Covid-19 des sorties du jour : ${COVID_STATUSES.map((s) => `${s.label.toLowerCase()} ${count(covid[s.key])}`).join(", ")}.`,
  });
  fillTable("covid-table", data.covid.by_establishment,
    ["open", "reminded", "opened_on_day", "positive", "suspected"], names, covid);

  drawLag(data.lag);
  drawWorklist(data.worklist, names);
}

// --- the worklist and the identity-vigilance rates (ids and reasons only) ---

const WORKLIST_REASONS = ["NO_GP", "UNKNOWN_RPPS", "NO_SECURE_ADDRESS", "OTHER", "BOUNCED", "FAILED"];
const VIGILANCE_REASONS = ["NO_GP", "UNKNOWN_RPPS", "NO_SECURE_ADDRESS"];

function drawWorklist(worklist, names) {
  const table = document.getElementById("worklist-table");
  const cells = (line) => [...WORKLIST_REASONS, "total"].map((reason) =>
    html("td", { class: line[reason] > 0 && reason !== "total" ? "num alert" : "num", "data-column": reason }, count(line[reason])));
  table.tBodies[0].replaceChildren(...worklist.by_unit.map((line) => html("tr", {},
    html("th", { scope: "row" }, names[line.establishment] || line.establishment),
    html("td", {}, line.unit || "—"), ...cells(line))));
  table.tFoot.replaceChildren(html("tr", {}, html("th", { scope: "row" }, "Total"), html("td", {}), ...cells(worklist.total)));
  setText("vigilance-month", worklist.month);
  document.getElementById("vigilance-table").tBodies[0].replaceChildren(...worklist.rates.map((line) => html("tr", {},
    html("th", { scope: "row" }, names[line.establishment] || line.establishment),
    html("td", { class: "num" }, count(line.stay_events)),
    ...VIGILANCE_REASONS.map((reason) => html("td", {
      class: "num", "data-establishment": line.establishment, "data-column": `${reason}_rate`,
      title: `${count(line[reason])} sur ${count(line.stay_events)}`,
    }, rate(line[`${reason}_rate`]))))));
}

function drawLag(lag) {
  setText("lag-threshold", count(lag.threshold));
  const status = document.getElementById("lag-status");
  status.classList.toggle("error", Boolean(lag.error));
  if (lag.error) {
    status.textContent = lag.checked_at
      ? `Kafka ne répond pas ; chiffres lus à ${clock(lag.checked_at)}.`
      : "Kafka ne répond pas ; aucun chiffre lu pour l'instant.";
  } else {
    status.textContent = lag.checked_at ? `Lu à ${clock(lag.checked_at)}.` : "Première lecture en cours…";
  }
  const over = lag.groups.filter((group) => group.over_threshold).length;
  drawBars("lag-bars", lag.groups.map((group) => ({
    label: SERVICES[group.group] ? `${SERVICES[group.group]} (${group.group})` : group.group,
    values: { lag: group.lag },
    color: group.over_threshold ? LAG_OVER : LAG_NORMAL,
    over: group.over_threshold,
    note: group.partitions === 0
      ? "pas encore de position enregistrée"
      : `${count(group.lag)}${group.over_threshold ? " — au-delà du seuil" : ""}`,
    attributes: { "data-group": group.group, "data-lag": group.lag },
  })), [{ key: "lag", label: "Messages à lire", color: LAG_NORMAL }], {
    labelWidth: 360, rightWidth: 260, threshold: lag.threshold, scaleMax: lag.threshold * 1.25,
    summary: `Retard de lecture de ${lag.groups.length} services ; ${over} au-delà du seuil de ${count(lag.threshold)}.`,
  });
}

function connection(ok, reason) {
  const element = document.getElementById("connection");
  element.classList.toggle("lost", !ok);
  element.textContent = ok ? "" : `${reason} — nouvel essai dans ${state.refreshSeconds} s`;
  document.getElementById("figures").classList.toggle("stale", !ok);
}

async function refresh() {
  clearTimeout(state.timer);
  const serial = ++state.serial;
  const query = state.chosenDay ? `?day=${encodeURIComponent(state.chosenDay)}` : "";
  try {
    const response = await fetch(`/api/overview${query}`, { cache: "no-store" });
    const body = await response.json();
    if (serial !== state.serial) return;  // a newer request (another day) was sent meanwhile
    if (!response.ok) throw new Error(body.error || `erreur ${response.status}`);
    render(body);
    connection(true);
    document.getElementById("figures").setAttribute("aria-busy", "false");
  } catch (error) {
    if (serial !== state.serial) return;
    connection(false, error instanceof TypeError ? "serveur injoignable" : error.message);
  }
  state.timer = setTimeout(refresh, state.refreshSeconds * 1000);
}

function choose(day) {
  state.chosenDay = day;
  document.getElementById("latest-day").setAttribute("aria-pressed", String(day === null));
  refresh();
}

document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("day").addEventListener("change", (event) => {
    if (event.target.value) choose(event.target.value);
  });
  document.getElementById("previous-day").addEventListener("click", () => {
    if (state.shownDay) choose(shiftDay(state.shownDay, -1));
  });
  document.getElementById("next-day").addEventListener("click", () => {
    if (state.shownDay) choose(shiftDay(state.shownDay, 1));
  });
  document.getElementById("latest-day").addEventListener("click", () => choose(null));
  let resizing = null;
  window.addEventListener("resize", () => {
    clearTimeout(resizing);
    resizing = setTimeout(() => state.figures && render(state.figures), 150);
  });
  refresh();
});
