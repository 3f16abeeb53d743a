package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"slipway.dev/slipway"
	"slipway.dev/slipway/httpapi"
)

func newStatusCommand(g *globals) *cobra.Command {
	var watch, wait bool
	var timeout, reconnect time.Duration
	cmd := &cobra.Command{
		Use:   "status APP",
		Short: "Show an app's rollout, live instances, drift and analysis",
		Long: `status shows an app: its stable revision, its latest rollout (id, strategy, phase, step,
weight, reason), the live instances of each revision with their readiness and traffic weight,
any drift between what is declared and what runs, and the rollout's analysis runs.

--watch redraws on every event of the app until interrupted.
--wait blocks until the latest rollout has ended. Exit status: 0 when it completed, 3 when it
was aborted (rolled back), 1 on error or when --timeout passes first.

When the connection to the server breaks (the server restarts, or is stopped and started
again), --watch and --wait say so on stderr, reconnect, read the status again and carry on
watching; they give up after --reconnect-timeout.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeoutCause(ctx, timeout, errTimeout{timeout})
				defer cancel()
			}
			c, err := streamClient(g, cmd.ErrOrStderr(), reconnect)
			if err != nil {
				return err
			}
			app := args[0]
			if watch {
				return watchStatus(ctx, g, c, cmd.OutOrStdout(), app, wait)
			}
			st, err := c.Status(ctx, app)
			if err != nil {
				return waitError(ctx, err)
			}
			if wait && st.Rollout != nil && !st.Rollout.Phase.Terminal() {
				if _, err := waitRollout(ctx, c, app, st.Rollout.ID, cmd.ErrOrStderr()); err != nil {
					return err
				}
				if st, err = c.Status(ctx, app); err != nil {
					return waitError(ctx, err)
				}
			}
			if err := g.emit(cmd.OutOrStdout(), st, func(w io.Writer) error { return writeStatus(w, st) }); err != nil {
				return err
			}
			if wait {
				return rolloutExit(st.Rollout)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.BoolVar(&watch, "watch", false, "redraw on every event until interrupted")
	f.BoolVar(&wait, "wait", false, "wait until the latest rollout has ended (exit 3 when aborted)")
	f.DurationVar(&timeout, "timeout", 0, "give up waiting after this long (0: never)")
	reconnectFlag(cmd, &reconnect)
	return cmd
}

// errTimeout is the cause of a --timeout context.
type errTimeout struct{ d time.Duration }

func (e errTimeout) Error() string { return fmt.Sprintf("timed out after %s", e.d) }

// waitError explains an error that may come from --timeout or an interrupt.
func waitError(ctx context.Context, err error) error {
	var te errTimeout
	if errors.As(context.Cause(ctx), &te) {
		return te
	}
	if ctx.Err() != nil {
		return errors.New("interrupted")
	}
	return err
}

// rolloutExit maps an ended rollout to the exit status of --wait.
func rolloutExit(rs *slipway.RolloutStatus) error {
	if rs == nil {
		return nil
	}
	switch rs.Phase {
	case slipway.PhaseAborted:
		msg := "rollout " + rs.ID + " was aborted"
		if rs.Reason != "" {
			msg += ": " + rs.Reason
		}
		return &exitStatus{code: exitAborted, err: errors.New(msg)}
	case slipway.PhaseCompleted:
		return nil
	case slipway.PhaseProgressing, slipway.PhasePaused:
		return fmt.Errorf("rollout %s has not ended (%s)", rs.ID, rs.Phase)
	}
	return fmt.Errorf("rollout %s is in unknown phase %q", rs.ID, rs.Phase)
}

// errStop ends an event stream from its callback.
var errStop = errors.New("stop")

// lastSeq returns the newest event's Seq for app: any later change comes as a later event.
func lastSeq(ctx context.Context, c *httpapi.Client, app string) (int64, error) {
	evs, err := c.Events(ctx, slipway.EventFilter{App: app, Limit: 1})
	if err != nil || len(evs) == 0 {
		return 0, err
	}
	return evs[len(evs)-1].Seq, nil
}

// waitRollout blocks until rollout id of app has ended, rereading it on each of the app's
// events (and after a reconnect), and reports each change of phase, step or weight to
// progress.
func waitRollout(ctx context.Context, c *httpapi.Client, app, id string, progress io.Writer) (slipway.Rollout, error) {
	after, err := lastSeq(ctx, c, app)
	if err != nil {
		return slipway.Rollout{}, waitError(ctx, err)
	}
	ro, err := c.Rollout(ctx, id)
	if err != nil {
		return ro, waitError(ctx, err)
	}
	last := ""
	report := func(r slipway.Rollout) {
		if line := rolloutLine(r); line != last {
			fmt.Fprintln(progress, line)
			last = line
		}
	}
	report(ro)
	if ro.Phase.Terminal() {
		return ro, nil
	}
	// reread reads the rollout again; errStop once it has ended.
	reread := func() error {
		r, err := c.Rollout(ctx, id)
		if err != nil {
			return err
		}
		ro = r
		report(ro)
		if ro.Phase.Terminal() {
			return errStop
		}
		return nil
	}
	err = c.FollowEvents(ctx, slipway.EventFilter{App: app, After: after}, func(e slipway.Event) error {
		if e.Rollout != "" && e.Rollout != id {
			return nil
		}
		return reread()
	}, reread)
	switch {
	case errors.Is(err, errStop):
		return ro, nil
	case err == nil || ctx.Err() != nil:
		return ro, fmt.Errorf("rollout %s: %w", id, waitError(ctx, err))
	}
	return ro, err
}

// rolloutLine is a one-line summary of a rollout.
func rolloutLine(r slipway.Rollout) string {
	s := fmt.Sprintf("rollout %s (%s) %s", escape(r.ID), escape(r.Strategy), escape(r.Phase))
	if n := r.Steps(); n > 0 {
		s += ", " + stepText(r.Step, n)
	}
	if r.Strategy == slipway.StrategyCanary {
		s += fmt.Sprintf(", weight %d%%", r.Weight)
	}
	if r.Reason != "" {
		s += ": " + escape(r.Reason)
	}
	return s
}

// watchStatus draws the status, then redraws it on each of the app's events and after each
// reconnect, until ctx ends (or, with wait, until the latest rollout has ended).
func watchStatus(ctx context.Context, g *globals, c *httpapi.Client, out io.Writer, app string, wait bool) error {
	after, err := lastSeq(ctx, c, app)
	if err != nil {
		return waitError(ctx, err)
	}
	st, err := c.Status(ctx, app)
	if err != nil {
		return waitError(ctx, err)
	}
	tty := isTerminal(out)
	draw := func(st slipway.AppStatus) error {
		switch g.output {
		case outputJSON:
			b, err := json.Marshal(st)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(out, "%s\n", escapeEncoded(b, false))
			return err
		case outputYAML:
			if _, err := io.WriteString(out, "---\n"); err != nil {
				return err
			}
			return writeYAML(out, st)
		}
		var b strings.Builder
		if tty {
			b.WriteString("\x1b[H\x1b[2J")
		} else {
			b.WriteString("--- " + escape(st.App) + "\n")
		}
		if err := writeStatus(&b, st); err != nil {
			return err
		}
		_, err := io.WriteString(out, b.String())
		return err
	}
	done := func(st slipway.AppStatus) bool {
		return wait && (st.Rollout == nil || st.Rollout.Phase.Terminal())
	}
	if err := draw(st); err != nil {
		return err
	}
	if done(st) {
		return rolloutExit(st.Rollout)
	}
	// redraw reads the status again and draws it; errStop once the wait is over.
	redraw := func() error {
		s, err := c.Status(ctx, app)
		if err != nil {
			return err
		}
		st = s
		if err := draw(st); err != nil {
			return err
		}
		if done(st) {
			return errStop
		}
		return nil
	}
	err = c.FollowEvents(ctx, slipway.EventFilter{App: app, After: after}, func(slipway.Event) error { return redraw() }, redraw)
	switch {
	case errors.Is(err, errStop):
		return rolloutExit(st.Rollout)
	case err == nil && !wait:
		// Interrupted: the end of a watch.
		return nil
	case err == nil || ctx.Err() != nil:
		return waitError(ctx, err)
	}
	return err
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// writeStatus draws an app's status as text, every string from the server escaped.
func writeStatus(w io.Writer, st slipway.AppStatus) error {
	var b strings.Builder
	fmt.Fprintf(&b, "App:       %s\n", escape(st.App))
	fmt.Fprintf(&b, "Replicas:  %d\n", st.Replicas)
	stable := "none"
	if st.Stable != nil {
		stable = revName(st.Stable.Revision, st.Stable.Version)
	}
	fmt.Fprintf(&b, "Stable:    %s\n", stable)
	if r := st.Rollout; r == nil {
		b.WriteString("Rollout:   none\n")
	} else {
		fmt.Fprintf(&b, "Rollout:   %s (%s)\n", escape(r.ID), escape(r.Strategy))
		phase := escape(r.Phase)
		if c := causeText(r.Cause); c != "" {
			phase += " (" + escape(c) + ")"
		}
		fmt.Fprintf(&b, "  Phase:     %s\n", phase)
		if r.Reason != "" {
			fmt.Fprintf(&b, "  Reason:    %s\n", escape(r.Reason))
		}
		from := "none"
		if r.From != "" {
			from = escape(r.From)
		}
		fmt.Fprintf(&b, "  Revision:  %s → %s\n", from, revName(r.Revision, r.Version))
		if r.Steps > 0 {
			fmt.Fprintf(&b, "  Step:      %s\n", strings.TrimPrefix(stepText(r.Step, r.Steps), "step "))
		}
		fmt.Fprintf(&b, "  Weight:    %d%%\n", r.Weight)
		fmt.Fprintf(&b, "  Started:   %s\n", stamp(r.StartedAt))
		fmt.Fprintf(&b, "  Updated:   %s\n", stamp(r.UpdatedAt))
		if r.CompletedAt != nil {
			fmt.Fprintf(&b, "  Completed: %s\n", stamp(*r.CompletedAt))
		}
	}

	b.WriteString("\nLive:\n")
	if len(st.Live) == 0 {
		b.WriteString("  no instances\n")
	} else {
		tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  REVISION\tVERSION\tREADY\tDESIRED\tWEIGHT")
		for _, l := range st.Live {
			fmt.Fprintf(tw, "  %s\t%s\t%d/%d\t%d\t%d%%\n", escape(l.Revision), orDash(escape(l.Version)), l.Ready, l.Instances, l.Desired, l.Weight)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if st.Split.Approximate {
		b.WriteString("  weights are approximate: shared by the ratio of instances serving (no HTTPRoute)\n")
	}
	for _, rt := range st.Split.Routes {
		fmt.Fprintf(&b, "  route %s → %s\n", escape(rt.Name), escape(rt.Revision))
	}

	if len(st.Drift) == 0 {
		b.WriteString("\nDrift:     none\n")
	} else {
		b.WriteString("\nDrift:\n")
		for _, d := range st.Drift {
			fmt.Fprintf(&b, "  %s %s: desired %d, actual %d", escape(d.Kind), orDash(escape(d.Revision)), d.Desired, d.Actual)
			if d.Message != "" {
				b.WriteString(": " + escape(d.Message))
			}
			b.WriteByte('\n')
		}
	}

	if len(st.Analysis) > 0 {
		b.WriteString("\nAnalysis:\n")
		tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  RUN\tKIND\tPHASE\tMESSAGE")
		for _, a := range st.Analysis {
			msg := a.Message
			if a.Phase == slipway.VerdictRunning && a.Verdict != "" {
				// A running run's verdict so far: its score, each metric's measurements.
				msg = strings.TrimPrefix(msg+"; so far: "+a.Verdict, "; ")
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", escape(a.ID), escape(a.Kind), escape(a.Phase), escape(msg))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	_, err := io.WriteString(w, tidy(b.String()))
	return err
}

// causeText says why a rollout is paused, in words.
func causeText(c slipway.PauseCause) string {
	switch c {
	case slipway.PauseNone:
		return ""
	case slipway.PauseAtStep:
		return "at a pause step; promote or resume to go on"
	case slipway.PauseManual:
		return "paused by hand; resume to go on"
	case slipway.PauseInconclusive:
		return "analysis inconclusive; promote, retry or abort"
	case slipway.PauseApproval:
		return "waiting for promote"
	}
	return string(c)
}

// tidy drops the trailing blanks tabwriter leaves in a table's last column.
func tidy(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " ")
	}
	return strings.Join(lines, "\n")
}

// revName is "id (version)", or "id" without a version, escaped.
func revName(id, version string) string {
	if version == "" {
		return escape(id)
	}
	return escape(id) + " (" + escape(version) + ")"
}

// stamp prints a time in UTC, "-" for the zero time.
func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// stepText shows a canary step for people: counted from 1, and the final promotion once
// every step is done. (The API's step is the 0-based index of the current step.)
func stepText(step, steps int) string {
	if step >= steps {
		return fmt.Sprintf("final promotion (%d/%d steps done)", steps, steps)
	}
	return fmt.Sprintf("step %d/%d", step+1, steps)
}
