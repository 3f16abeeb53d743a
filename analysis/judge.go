package analysis

import (
	"fmt"
	"math"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/ext"

	"slipway.dev/slipway"
)

// judge turns one measured value into a measurement verdict and a message: threshold by the
// metric's CEL conditions, decision by a sequential test's decision (canary against
// baseline).
type judge interface {
	judge(m slipway.Metric, value any) (slipway.Verdict, string)
}

// celCostLimit bounds the work one condition may do on one value.
const celCostLimit = 1_000_000

// threshold judges a value with the metric's CEL conditions over `result`. It builds the CEL
// environment on first need, compiles each expression once and keeps the program for the life
// of the threshold (one analysis run). The zero value is ready to use; it is not safe for
// concurrent use.
type threshold struct {
	env      *cel.Env
	programs map[string]cel.Program
}

var _ judge = (*threshold)(nil)

// compile returns the program for expr, compiling it on first use. A condition must be a
// boolean expression (or a dynamic one that is checked when evaluated).
func (t *threshold) compile(expr string) (cel.Program, error) {
	if p, ok := t.programs[expr]; ok {
		return p, nil
	}
	if t.env == nil {
		env, err := cel.NewEnv(
			cel.Variable("result", cel.DynType),
			cel.CrossTypeNumericComparisons(true),
			ext.Strings(),
			ext.Math(),
		)
		if err != nil {
			return nil, fmt.Errorf("cel environment: %w", err)
		}
		t.env = env
		t.programs = map[string]cel.Program{}
	}
	ast, iss := t.env.Compile(expr)
	if iss != nil && iss.Err() != nil {
		return nil, iss.Err()
	}
	if out := ast.OutputType(); !out.IsExactType(types.BoolType) && !out.IsExactType(types.DynType) {
		return nil, fmt.Errorf("condition is of type %s, not bool", out)
	}
	p, err := t.env.Program(ast, cel.CostLimit(celCostLimit))
	if err != nil {
		return nil, err
	}
	t.programs[expr] = p
	return p, nil
}

// eval runs the condition expr on value.
func (t *threshold) eval(expr string, value any) (bool, error) {
	p, err := t.compile(expr)
	if err != nil {
		return false, err
	}
	out, _, err := p.Eval(map[string]any{"result": value})
	if err != nil {
		return false, err
	}
	b, ok := out.Value().(bool)
	if !ok {
		return false, fmt.Errorf("condition gave %v (%s), not a bool", out.Value(), out.Type().TypeName())
	}
	return b, nil
}

// judge applies the rules, in order:
//   - failureCondition true: Failed;
//   - successCondition true: Successful; false: Failed when there is no failureCondition,
//     else Inconclusive (neither condition holds);
//   - only a failureCondition, false: Successful;
//   - no condition: a job passes when it exits 0; any other provider passes by answering.
//
// A condition that cannot be evaluated on the value (a type mismatch) makes an Error.
func (t *threshold) judge(m slipway.Metric, value any) (slipway.Verdict, string) {
	if m.FailureCondition != "" {
		failed, err := t.eval(m.FailureCondition, value)
		if err != nil {
			return slipway.VerdictError, "failureCondition: " + err.Error()
		}
		if failed {
			return slipway.VerdictFailed, "failureCondition is true"
		}
	}
	if m.SuccessCondition != "" {
		ok, err := t.eval(m.SuccessCondition, value)
		if err != nil {
			return slipway.VerdictError, "successCondition: " + err.Error()
		}
		switch {
		case ok:
			return slipway.VerdictSuccessful, "successCondition is true"
		case m.FailureCondition == "":
			return slipway.VerdictFailed, "successCondition is false"
		default:
			return slipway.VerdictInconclusive, "neither successCondition nor failureCondition is true"
		}
	}
	if m.FailureCondition != "" {
		return slipway.VerdictSuccessful, "failureCondition is false"
	}
	if m.Provider.Job != nil {
		code, ok := exitCode(value)
		if !ok {
			return slipway.VerdictError, "job result has no exit code"
		}
		if code != 0 {
			return slipway.VerdictFailed, fmt.Sprintf("exit code %d", code)
		}
		return slipway.VerdictSuccessful, "exit code 0"
	}
	return slipway.VerdictSuccessful, "no condition; measured"
}

// exitCode reads a job result's exit code.
func exitCode(value any) (int, bool) {
	m, ok := value.(map[string]any)
	if !ok {
		return 0, false
	}
	f, ok := m["exitCode"].(float64)
	if !ok || f != math.Trunc(f) {
		return 0, false
	}
	return int(f), true
}

// compared reports whether m is judged by comparing the canary's samples with a
// baseline's instead of conditions.
func compared(m slipway.Metric) bool {
	p := m.Provider
	return (p.Prometheus != nil && p.Prometheus.Compare != nil) || (p.Builtin != nil && p.Builtin.Compare != nil) ||
		(p.Web != nil && p.Web.Compare != nil)
}

// comparison judges a metric from the class its provider gave (canary against baseline,
// package analysis/stats): Pass is Successful, High and Low Failed, and NoData, or a value
// without a class, an Error, never a pass.
type comparison struct{}

var _ judge = comparison{}

func (comparison) judge(_ slipway.Metric, value any) (slipway.Verdict, string) {
	v, _ := value.(map[string]any)
	reason, _ := v["reason"].(string)
	switch v["class"] {
	case "Pass":
		return slipway.VerdictSuccessful, reason
	case "High", "Low":
		return slipway.VerdictFailed, reason
	case "NoData":
		return slipway.VerdictError, "no data to compare: " + reason
	}
	return slipway.VerdictError, fmt.Sprintf("the comparison gave no class: %v", value)
}

// sequential reports whether m is judged by a sequential test instead of conditions.
func sequential(m slipway.Metric) bool {
	return m.Provider.Builtin != nil && m.Provider.Builtin.Sequential != nil
}

// decision judges a metric with a sequential test: the builtin provider has already weighed
// the canary against the baseline (metric/builtin), and the value holds its decision and its
// reason in words. Fail is Failed and Pass Successful; a value without a decision is an Error,
// never a pass. (No decision yet is no value at all: the provider answered
// ErrInsufficientData and the metric waits.)
type decision struct{}

var _ judge = decision{}

func (decision) judge(_ slipway.Metric, value any) (slipway.Verdict, string) {
	v, _ := value.(map[string]any)
	reason, _ := v["reason"].(string)
	switch v["decision"] {
	case "Fail":
		return slipway.VerdictFailed, reason
	case "Pass":
		return slipway.VerdictSuccessful, reason
	}
	return slipway.VerdictError, fmt.Sprintf("the sequential test gave no decision: %v", value)
}
