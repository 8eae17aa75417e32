import { Canvas, type Rgb, textWidth } from './png';
import type { LatenessSummary } from './stats';

/** One bar cluster of the chart: one side at one number of runs. */
export interface ChartEntry {
  side: string;
  runs: number;
  lateness: LatenessSummary;
}

const STATS = [
  { key: 'min', label: 'earliest', color: [120, 170, 220] },
  { key: 'p50', label: 'p50', color: [40, 110, 180] },
  { key: 'p95', label: 'p95', color: [230, 140, 40] },
  { key: 'max', label: 'max', color: [200, 50, 50] },
] as const satisfies readonly { key: keyof LatenessSummary; label: string; color: Rgb }[];

const INK: Rgb = [30, 30, 30];
const GRID: Rgb = [225, 225, 225];
const BAR = 12;
const GAP = 2;
const CLUSTER = STATS.length * (BAR + GAP);
const CLUSTER_GAP = 14;
const PANEL_GAP = 24;

/** A step of 1, 2 or 5 × 10^k that cuts `span` into at most `most` intervals. */
export function tickStep(span: number, most = 8): number {
  if (!(span > 0)) return 1;
  const raw = span / most;
  const power = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 5, 10]) if (m * power >= raw) return m * power;
  return 10 * power;
}

/**
 * RunTask lateness (seconds; below zero = early) as bars: one panel per number of runs, each on its own
 * scale, with one cluster per side of its earliest call, p50, p95 and max. Returns the PNG.
 */
export function latenessChart(entries: readonly ChartEntry[], title: string): Buffer {
  const sizes = [...new Set(entries.map((e) => e.runs))].sort((a, b) => a - b);
  const sides = [...new Set(entries.map((e) => e.side))];
  const axis = 44;
  const clusters = sides.length * CLUSTER + (sides.length - 1) * CLUSTER_GAP;
  const panelWidth = axis + 16 + clusters + PANEL_GAP;
  const width = Math.max(20 + sizes.length * panelWidth, 20 + textWidth(title, 2));
  const plotTop = 70;
  const plotHeight = 260;
  const height = plotTop + plotHeight + 56;
  const canvas = new Canvas(width, height);

  canvas.text(10, 10, title, INK, 2);
  let lx = 10;
  for (const s of STATS) {
    canvas.fillRect(lx, 32, 8, 8, s.color);
    canvas.text(lx + 12, 33, s.label, INK);
    lx += 12 + textWidth(s.label) + 16;
  }
  canvas.text(10, height - 14, 'seconds after the scheduled time, below 0 = launched early', INK);

  sizes.forEach((runs, p) => {
    const inPanel = entries.filter((e) => e.runs === runs);
    const values = inPanel.flatMap((e) => STATS.map((s) => e.lateness[s.key])).filter(Number.isFinite);
    const step = tickStep(Math.max(0.5, Math.max(0, ...values) - Math.min(0, ...values)), 6);
    const top = Math.ceil(Math.max(0, ...values) / step) * step || step;
    const bottom = Math.floor(Math.min(0, ...values) / step) * step;
    const y = (v: number) => plotTop + ((top - v) / (top - bottom)) * plotHeight;
    const left = 10 + p * panelWidth + axis;
    const right = left + 16 + clusters;

    const label = `n = ${runs}`;
    canvas.text(left + (right - left - textWidth(label)) / 2, plotTop - 16, label, INK);
    for (let v = bottom; v <= top + step / 2; v += step) {
      const tick = Number(v.toFixed(6)).toString();
      canvas.fillRect(left, y(v), right - left, 1, v === 0 ? INK : GRID);
      canvas.text(left - 6 - textWidth(tick), y(v) - 3, tick, INK);
    }
    canvas.fillRect(left, plotTop, 1, plotHeight, INK);

    sides.forEach((side, c) => {
      const cx = left + 8 + c * (CLUSTER + CLUSTER_GAP);
      const entry = inPanel.find((e) => e.side === side);
      STATS.forEach((s, i) => {
        const v = entry?.lateness[s.key];
        if (v === undefined || !Number.isFinite(v)) return;
        // At least one pixel, so a zero bar still shows where it is.
        const h = y(v) - y(0);
        canvas.fillRect(cx + i * (BAR + GAP), y(0), BAR, Math.abs(h) < 1 ? -1 : h, s.color);
      });
      canvas.text(cx + (CLUSTER - textWidth(side)) / 2, plotTop + plotHeight + 8, side, INK);
    });
  });
  return canvas.png();
}
