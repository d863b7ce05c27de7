package flow

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"log/slog"
	"time"
)

// Run statuses.
const (
	RunRunning   = "running"
	RunSucceeded = "succeeded"
	RunFailed    = "failed"
)

// step is one row of a run's history, with the bookkeeping that goes with
// it: delta is the change in the run's outstanding work (an event fanned
// out to n actions adds n-1; a finished action adds its outputs minus one),
// so a run is finished when nothing is outstanding.
type step struct {
	Run, WorkID     string
	Attempt         int
	Kind            string
	Channel, Action string
	Hop             int
	Status          string
	Condition       string
	Input, Config   any
	Output          any
	Emitted         []*envelope
	Error, Note     string
	Started         time.Time

	delay    time.Duration
	marker   bool // a StepRunning row: no bookkeeping
	delta    int
	newRun   *runStart
	runError string
}

type runStart struct {
	Op, App, Channel, Source string
	Started                  time.Time
}

type emitted struct {
	DelayMS int64       `json:"delayMs,omitempty"`
	Events  []*envelope `json:"events"`
}

func jsonText(v any) sql.NullString {
	if v == nil {
		return sql.NullString{String: "null", Valid: true}
	}
	b, err := json.Marshal(v)
	if err != nil {
		return sql.NullString{}
	}
	return sql.NullString{String: string(b), Valid: true}
}

// statements are the run history's hot statements, prepared once.
type statements struct {
	insertStep, otherFinals, insertRun, updateRun, finishRun *sql.Stmt
}

func (e *Engine) prepare(ctx context.Context) error {
	var err error
	prep := func(q string) *sql.Stmt {
		if err != nil {
			return nil
		}
		var st *sql.Stmt
		st, err = e.db.PrepareContext(ctx, q)
		return st
	}
	e.sql = statements{
		insertStep: prep(`INSERT INTO flux_steps (run_id, work_id, attempt, kind, channel, action, hop, status, condition,
			input, config, output, emitted, error, note, started_at, duration_us)
			VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17)
			ON CONFLICT (run_id, work_id, attempt) DO UPDATE SET status = excluded.status, output = excluded.output,
				emitted = excluded.emitted, error = excluded.error, note = excluded.note, duration_us = excluded.duration_us
			WHERE flux_steps.status = 'running'`),
		otherFinals: prep(`SELECT COUNT(*) FROM flux_steps WHERE run_id = $1 AND work_id = $2 AND attempt <> $3
			AND status NOT IN ('running', 'retrying')`),
		insertRun: prep(`INSERT INTO flux_runs (id, operator_id, app, channel, source, status, pending, steps, error, started_at, updated_at)
			VALUES ($1,$2,$3,$4,$5,$6,$7,1,$8,$9,$10) ON CONFLICT DO NOTHING`),
		updateRun: prep(`UPDATE flux_runs SET pending = pending + $1, steps = steps + 1, updated_at = $2,
			error = CASE WHEN error = '' THEN $3 ELSE error END WHERE id = $4 RETURNING pending, status, error`),
		finishRun: prep(`UPDATE flux_runs SET status = $1, finished_at = $2 WHERE id = $3`),
	}
	return err
}

func (s *statements) close() {
	for _, st := range []*sql.Stmt{s.insertStep, s.otherFinals, s.insertRun, s.updateRun, s.finishRun} {
		if st != nil {
			st.Close()
		}
	}
}

// record writes a step and updates its run in one transaction shared with
// other steps (group commit). A step already recorded (work repeated after
// a crash) changes nothing.
func (e *Engine) record(ctx context.Context, st *step) error {
	var finished string
	dur := time.Since(st.Started)
	var em sql.NullString
	if st.Status == StepSucceeded || len(st.Emitted) > 0 { // a handled failure emits too
		em = jsonText(emitted{DelayMS: st.delay.Milliseconds(), Events: st.Emitted})
	}
	err := e.batch.Do(ctx, func(tx *sql.Tx) error {
		finished = ""
		// A final row replaces the attempt's "running" marker.
		res, err := tx.Stmt(e.sql.insertStep).Exec(st.Run, st.WorkID, st.Attempt, st.Kind, st.Channel, st.Action, st.Hop, st.Status, st.Condition,
			jsonText(st.Input), nullJSON(st.Config), nullJSON(st.Output), em, st.Error, st.Note,
			st.Started.UnixMilli(), dur.Microseconds())
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 || st.marker {
			return nil // recorded before, or only a marker
		}
		if st.Kind == "action" && st.Status != StepRetrying && st.Attempt > 1 {
			// Another attempt may have finished this step already (two
			// deliveries raced): the run's bookkeeping counts it once.
			var others int
			if err := tx.Stmt(e.sql.otherFinals).QueryRow(st.Run, st.WorkID, st.Attempt).Scan(&others); err != nil {
				return err
			}
			if others > 0 {
				return nil
			}
		}
		now := e.now().UnixMilli()
		var pending int64
		var status, runErr string
		if st.newRun != nil {
			r := st.newRun
			if _, err := tx.Stmt(e.sql.insertRun).Exec(st.Run, r.Op, r.App, r.Channel, r.Source, RunRunning, st.delta, st.runError, r.Started.UnixMilli(), now); err != nil {
				return err
			}
			pending, status, runErr = int64(st.delta), RunRunning, st.runError
		} else {
			err := tx.Stmt(e.sql.updateRun).QueryRow(st.delta, now, st.runError, st.Run).Scan(&pending, &status, &runErr)
			if errors.Is(err, sql.ErrNoRows) {
				return nil // pruned meanwhile
			}
			if err != nil {
				return err
			}
		}
		if pending <= 0 && status == RunRunning {
			finished = RunSucceeded
			if runErr != "" {
				finished = RunFailed
			}
			_, err := tx.Stmt(e.sql.finishRun).Exec(finished, now, st.Run)
			return err
		}
		return nil
	})
	if err != nil {
		return err
	}
	if finished != "" {
		e.m.runs.WithLabelValues(finished).Inc()
		// Tell waiting test runs on any node.
		if err := e.bus.NC.Publish(subjDone+st.Run, []byte(finished)); err != nil {
			slog.Debug("flow: run-finished notice", "err", err)
		}
	}
	return nil
}

func nullJSON(v any) sql.NullString {
	if v == nil {
		return sql.NullString{}
	}
	return jsonText(v)
}

type prior struct {
	final       string // status of a final attempt, if any
	last        int    // highest attempt recorded
	interrupted int    // an attempt that started and never finished
	emitted     []*envelope
	delay       time.Duration
}

// priorAttempts reads what earlier deliveries of a step recorded.
func (e *Engine) priorAttempts(ctx context.Context, run, work string) (prior, error) {
	var p prior
	rows, err := e.db.QueryContext(ctx, `SELECT attempt, status, emitted FROM flux_steps WHERE run_id = $1 AND work_id = $2`, run, work)
	if err != nil {
		return p, err
	}
	defer rows.Close()
	for rows.Next() {
		var a int
		var status string
		var em sql.NullString
		if err := rows.Scan(&a, &status, &em); err != nil {
			return p, err
		}
		p.last = max(p.last, a)
		if status == StepRunning {
			p.interrupted = a
			continue
		}
		if status != StepRetrying {
			p.final = status
			if em.Valid {
				var x emitted
				if err := json.Unmarshal([]byte(em.String), &x); err == nil {
					p.emitted, p.delay = x.Events, time.Duration(x.DelayMS)*time.Millisecond
				}
			}
		}
	}
	return p, rows.Err()
}

// Run is a run's summary (GET …/runs).
type Run struct {
	RunID      string `json:"runId"`
	App        string `json:"app"`
	Channel    string `json:"channel"`
	Source     string `json:"source"`
	Status     string `json:"status"`
	Error      string `json:"error,omitempty"`
	Steps      int64  `json:"steps"`
	Pending    int64  `json:"pending"`
	StartedAt  int64  `json:"startedAt"`
	UpdatedAt  int64  `json:"updatedAt"`
	FinishedAt *int64 `json:"finishedAt,omitempty"`
}

// Step is one entry of a run's trace (GET …/runs/{id}).
type Step struct {
	Kind       string          `json:"kind"` // event or action
	Channel    string          `json:"channel"`
	Action     string          `json:"action,omitempty"`
	Hop        int             `json:"hop"`
	Attempt    int             `json:"attempt"`
	Status     string          `json:"status"`
	Condition  string          `json:"condition,omitempty"` // "true", "false" or "" (none)
	Input      json.RawMessage `json:"input,omitempty"`
	Config     json.RawMessage `json:"config,omitempty"`
	Output     json.RawMessage `json:"output,omitempty"`
	Emitted    int             `json:"emitted,omitempty"` // events sent on
	DelayMS    int64           `json:"delayMs,omitempty"`
	Error      string          `json:"error,omitempty"`
	Note       string          `json:"note,omitempty"`
	StartedAt  int64           `json:"startedAt"`
	DurationUS int64           `json:"durationUs"`
}

// RunDetail is a run with its steps in order.
type RunDetail struct {
	Run
	Trace []Step `json:"trace"`
}

const runColumns = `id, app, channel, source, status, error, steps, pending, started_at, updated_at, finished_at`

func scanRun(sc interface{ Scan(...any) error }) (*Run, error) {
	var r Run
	var fin sql.NullInt64
	if err := sc.Scan(&r.RunID, &r.App, &r.Channel, &r.Source, &r.Status, &r.Error, &r.Steps, &r.Pending, &r.StartedAt, &r.UpdatedAt, &fin); err != nil {
		return nil, err
	}
	if fin.Valid {
		r.FinishedAt = &fin.Int64
	}
	return &r, nil
}

// Runs lists an app's runs, newest first. before is a run's startedAt/id
// key from the previous page ("" for the first).
func (e *Engine) Runs(ctx context.Context, op, app, status string, limit int, beforeStart int64, beforeID string) ([]*Run, error) {
	q := `SELECT ` + runColumns + ` FROM flux_runs WHERE operator_id = $1 AND app = $2
		AND ($3 = '' OR status = $3) AND ($4 = 0 OR started_at < $4 OR (started_at = $4 AND id < $5))
		ORDER BY started_at DESC, id DESC LIMIT $6`
	rows, err := e.db.QueryContext(ctx, q, op, app, status, beforeStart, beforeID, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []*Run{}
	for rows.Next() {
		r, err := scanRun(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// RunDetail returns a run and its trace, or nil when there is none.
func (e *Engine) RunDetail(ctx context.Context, op, app, id string) (*RunDetail, error) {
	r, err := scanRun(e.db.QueryRowContext(ctx, `SELECT `+runColumns+` FROM flux_runs WHERE operator_id = $1 AND app = $2 AND id = $3`, op, app, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	rows, err := e.db.QueryContext(ctx, `SELECT kind, channel, action, hop, attempt, status, condition, input, config, output, emitted,
		error, note, started_at, duration_us FROM flux_steps WHERE run_id = $1 ORDER BY started_at, hop, kind DESC, action, attempt`, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	d := &RunDetail{Run: *r, Trace: []Step{}}
	for rows.Next() {
		var s Step
		var in, cfg, out, em sql.NullString
		if err := rows.Scan(&s.Kind, &s.Channel, &s.Action, &s.Hop, &s.Attempt, &s.Status, &s.Condition, &in, &cfg, &out, &em,
			&s.Error, &s.Note, &s.StartedAt, &s.DurationUS); err != nil {
			return nil, err
		}
		s.Input, s.Config, s.Output = raw(in), raw(cfg), raw(out)
		if em.Valid {
			var x emitted
			if json.Unmarshal([]byte(em.String), &x) == nil {
				s.Emitted, s.DelayMS = len(x.Events), x.DelayMS
			}
		}
		d.Trace = append(d.Trace, s)
	}
	return d, rows.Err()
}

func raw(s sql.NullString) json.RawMessage {
	if !s.Valid {
		return nil
	}
	return json.RawMessage(s.String)
}

// pruneBatch bounds the runs deleted per statement, so pruning never holds
// a long lock.
const pruneBatch = 500

// Prune deletes finished runs past their retention, in batches, and
// returns how many went.
func (e *Engine) Prune(ctx context.Context) (int64, error) {
	now := e.now()
	var total int64
	for _, c := range []struct {
		status string
		keep   time.Duration
	}{{RunSucceeded, e.opts.RunRetention}, {RunFailed, e.opts.FailedRetention}} {
		cutoff := now.Add(-c.keep).UnixMilli()
		for {
			var n int64
			err := e.db.Tx(ctx, func(tx *sql.Tx) error {
				rows, err := tx.Query(`SELECT id FROM flux_runs WHERE status = $1 AND updated_at < $2 LIMIT $3`, c.status, cutoff, pruneBatch)
				if err != nil {
					return err
				}
				var ids []string
				for rows.Next() {
					var id string
					if err := rows.Scan(&id); err != nil {
						rows.Close()
						return err
					}
					ids = append(ids, id)
				}
				rows.Close()
				for _, id := range ids {
					if _, err := tx.Exec(`DELETE FROM flux_steps WHERE run_id = $1`, id); err != nil {
						return err
					}
					if _, err := tx.Exec(`DELETE FROM flux_runs WHERE id = $1`, id); err != nil {
						return err
					}
				}
				n = int64(len(ids))
				return nil
			})
			if err != nil {
				return total, err
			}
			total += n
			if n < pruneBatch {
				break
			}
		}
	}
	return total, nil
}

func (e *Engine) pruneLoop(ctx context.Context) {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-e.stopping:
			return
		case <-t.C:
			if n, err := e.Prune(ctx); err != nil {
				slog.Warn("flow: pruning runs", "err", err)
			} else if n > 0 {
				slog.Info("flow: pruned old runs", "count", n)
			}
		}
	}
}
