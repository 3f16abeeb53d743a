package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"

	"slipway.dev/slipway"
)

// OutcomeRecorder counts the outcomes apps report per flag variant (engine.Engine).
type OutcomeRecorder interface {
	// RecordOutcomes counts reports for flag key: ENOTFOUND for an unknown flag, EINVALID
	// for an unknown variant or a malformed report (then nothing is counted).
	RecordOutcomes(ctx context.Context, key string, reports []slipway.OutcomeReport) error
}

// OutcomesResponse answers POST /api/v1/flags/{key}/outcomes.
type OutcomesResponse struct {
	Recorded int `json:"recorded"`
}

// RampRequest is the optional body of POST /api/v1/flags/{key}/ramp/pause, /resume and
// /abort.
type RampRequest struct {
	Reason string `json:"reason,omitempty"`
}

// rampRoutes adds the ramp and outcome routes when the config has them.
func (s *Server) rampRoutes() {
	m := s.mux
	if s.cfg.Outcomes != nil {
		m.HandleFunc("POST /api/v1/flags/{key}/outcomes", s.allow(slipway.PermDeployShared, s.outcomes))
	}
	if s.cfg.Ramps == nil {
		return
	}
	m.HandleFunc("GET /api/v1/ramps", s.allow(slipway.PermRead, s.ramps))
	m.HandleFunc("GET /api/v1/flags/{key}/ramp", s.allow(slipway.PermRead, s.ramp))
	for _, op := range []slipway.RampOp{slipway.RampPause, slipway.RampResume, slipway.RampAbort} {
		m.HandleFunc("POST /api/v1/flags/{key}/ramp/"+string(op), s.allow(slipway.PermDeployShared, s.operateRamp(op)))
	}
}

// outcomes counts what an app reports: one {"variant", "outcome", "count"} object or a list
// of them.
func (s *Server) outcomes(w http.ResponseWriter, r *http.Request) {
	var raw json.RawMessage
	if err := decodeBody(w, r, &raw, false); err != nil {
		s.fail(w, r, err)
		return
	}
	var reports []slipway.OutcomeReport
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var err error
	if t := bytes.TrimSpace(raw); len(t) > 0 && t[0] == '[' {
		err = dec.Decode(&reports)
	} else {
		var one slipway.OutcomeReport
		err = dec.Decode(&one)
		reports = []slipway.OutcomeReport{one}
	}
	if err != nil {
		s.fail(w, r, slipway.Errorf(slipway.EINVALID, "request body is not valid: %s", jsonProblem(err, raw)))
		return
	}
	err = s.cfg.Outcomes.RecordOutcomes(r.Context(), r.PathValue("key"), reports)
	s.reply(w, r, OutcomesResponse{Recorded: len(reports)}, err)
}

func (s *Server) ramps(w http.ResponseWriter, r *http.Request) {
	v, err := s.cfg.Ramps.Ramps(r.Context())
	s.reply(w, r, nonNil(v), err)
}

func (s *Server) ramp(w http.ResponseWriter, r *http.Request) {
	v, err := s.cfg.Ramps.Ramp(r.Context(), r.PathValue("key"))
	s.reply(w, r, v, err)
}

func (s *Server) operateRamp(op slipway.RampOp) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req RampRequest
		if !s.decodeRequest(w, r, &req, &req.Reason, true) {
			return
		}
		v, err := s.cfg.Ramps.OperateRamp(r.Context(), slipway.RampOperation{
			Op: op, Flag: r.PathValue("key"), Actor: actor(r), Reason: req.Reason,
		})
		s.reply(w, r, v, err)
	}
}

// ReportOutcomes reports outcomes of flag key's variants (POST /api/v1/flags/{key}/outcomes).
func (c *Client) ReportOutcomes(ctx context.Context, key string, reports []slipway.OutcomeReport) error {
	var v OutcomesResponse
	return c.do(ctx, http.MethodPost, flagPath(key)+"/outcomes", reports, &v)
}

// Ramps returns every flag ramp (GET /api/v1/ramps).
func (c *Client) Ramps(ctx context.Context) ([]slipway.Ramp, error) {
	var v []slipway.Ramp
	return v, c.get(ctx, "/api/v1/ramps", &v)
}

// Ramp returns the ramp of flag key (GET /api/v1/flags/{key}/ramp).
func (c *Client) Ramp(ctx context.Context, key string) (slipway.Ramp, error) {
	var v slipway.Ramp
	return v, c.get(ctx, flagPath(key)+"/ramp", &v)
}

// OperateRamp pauses, resumes or aborts a ramp (POST /api/v1/flags/{key}/ramp/{op}).
func (c *Client) OperateRamp(ctx context.Context, op slipway.RampOperation) (slipway.Ramp, error) {
	var v slipway.Ramp
	return v, c.do(ctx, http.MethodPost, flagPath(op.Flag)+"/ramp/"+url.PathEscape(string(op.Op)), RampRequest{Reason: op.Reason}, &v)
}

var _ slipway.RampOperator = (*Client)(nil)
