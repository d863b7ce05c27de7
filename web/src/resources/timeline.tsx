// A camera's recording timeline: recorded periods as bars on a time axis
// (the last 24 h or 1 h), hour/minute ticks, and a click that chooses a
// moment (for an image export).
import { useState } from 'preact/hooks';
import { fmtTime } from '../ui';

export interface Period {
  startTime: number;
  endTime?: number; // absent while recording
}

const pad = (n: number) => String(n).padStart(2, '0');
const hhmm = (t: number) => {
  const d = new Date(t);
  return `${pad(d.getHours())}:${pad(d.getMinutes())}`;
};

/** covered reports whether t falls in a recorded period. */
export function covered(periods: Period[], t: number, now: number): boolean {
  return periods.some((p) => t >= p.startTime && t <= (p.endTime ?? now));
}

export function Timeline({
  from,
  to,
  periods,
  chosen,
  onChoose,
}: {
  from: number;
  to: number;
  periods: Period[];
  chosen: number | null;
  onChoose: (t: number) => void;
}) {
  const [hover, setHover] = useState<number | null>(null);
  const span = to - from;
  const frac = (t: number) => ((Math.min(Math.max(t, from), to) - from) * 100) / span;
  const pct = (t: number) => `${frac(t)}%`;
  // A period of seconds on a 24 h axis still gets a visible sliver, kept
  // inside the track when it ends at "now".
  const bar = (p: Period) => {
    const w = Math.max(frac(p.endTime ?? to) - frac(p.startTime), 0.4);
    return { left: `${Math.min(frac(p.startTime), 100 - w)}%`, width: `${w}%` };
  };
  const at = (e: MouseEvent) => {
    const r = (e.currentTarget as HTMLElement).getBoundingClientRect();
    return Math.round(from + ((e.clientX - r.left) / r.width) * span);
  };
  // Ticks every 3 h on the 24 h axis and every 10 min on the 1 h axis,
  // on round local times.
  const step = span > 6 * 3600_000 ? 3 * 3600_000 : 10 * 60_000;
  const offset = new Date(from).getTimezoneOffset() * 60_000;
  const ticks: number[] = [];
  for (let t = Math.ceil((from - offset) / step) * step + offset; t <= to; t += step) ticks.push(t);
  return (
    <div class="timeline">
      <div
        class="timeline-track"
        role="slider"
        aria-label="Recording timeline"
        aria-valuemin={from}
        aria-valuemax={to}
        aria-valuenow={chosen ?? to}
        tabIndex={0}
        onClick={(e) => onChoose(at(e))}
        onKeyDown={(e) => {
          // Arrow keys move the chosen moment by 1/96 of the axis (15 min on 24 h).
          const d = e.key === 'ArrowLeft' ? -1 : e.key === 'ArrowRight' ? 1 : 0;
          if (!d) return;
          e.preventDefault();
          onChoose(Math.min(to, Math.max(from, (chosen ?? to) + (d * span) / 96)));
        }}
        onMouseMove={(e) => setHover(at(e))}
        onMouseLeave={() => setHover(null)}
      >
        {periods.map((p, i) => (
          <div
            key={i}
            class={'timeline-bar' + (p.endTime ? '' : ' open')}
            data-testid="recorded-period"
            style={bar(p)}
            title={`${fmtTime(p.startTime)} – ${p.endTime ? fmtTime(p.endTime) : 'recording'}`}
          />
        ))}
        {ticks.map((t) => (
          <div key={t} class="timeline-tick" style={{ left: pct(t) }} />
        ))}
        {chosen !== null && chosen >= from && chosen <= to && <div class="timeline-marker" style={{ left: pct(chosen) }} />}
        {hover !== null && (
          <div class="timeline-hover" style={{ left: pct(hover) }}>
            {fmtTime(hover).slice(11)}
          </div>
        )}
      </div>
      <div class="timeline-labels">
        {ticks.map((t) => (
          <span key={t} style={{ left: pct(t) }}>
            {hhmm(t)}
          </span>
        ))}
      </div>
    </div>
  );
}
