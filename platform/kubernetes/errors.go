package kubernetes

import (
	"context"
	"errors"
	"fmt"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"slipway.dev/slipway"
)

// apiError turns an error of the Kubernetes API, met doing verb to the object kind
// namespace/name, into a slipway error that says what to do, wrapping the original. nil
// stays nil.
func apiError(err error, verb, kind, namespace, name string) error {
	if err == nil {
		return nil
	}
	obj := kind + " " + namespace + "/" + name
	if name == "" {
		obj = kind + "s of namespace " + namespace
	}
	msg := string(apierrors.ReasonForError(err))
	var status apierrors.APIStatus
	if errors.As(err, &status) {
		msg = status.Status().Message
	}
	var e *slipway.Error
	switch {
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%s %s: %w", verb, obj, err)
	case apierrors.IsForbidden(err) && strings.Contains(msg, "exceeded quota"):
		e = slipway.Errorf(slipway.EUNAVAILABLE, "the namespace's ResourceQuota refuses to %s %s (%s); raise the quota, or lower the app's replicas or resources; slipway retries", verb, obj, msg)
	case apierrors.IsForbidden(err):
		e = slipway.Errorf(slipway.EFORBIDDEN, "the cluster forbids slipway to %s %s (%s); grant slipway's account the role docs/kubernetes.md lists", verb, obj, msg)
	case apierrors.IsUnauthorized(err):
		e = slipway.Errorf(slipway.EUNAVAILABLE, "the cluster does not accept slipway's credentials to %s %s (%s); check the environment's kubeconfig", verb, obj, msg)
	case apierrors.IsConflict(err):
		e = slipway.Errorf(slipway.ECONFLICT, "%s changed while slipway was writing it (%s); slipway retries with what it holds now", obj, msg)
	case apierrors.IsAlreadyExists(err):
		e = slipway.Errorf(slipway.ECONFLICT, "%s already exists and slipway did not create it; rename or remove it", obj)
	case apierrors.IsInvalid(err):
		e = slipway.Errorf(slipway.EINVALID, "the cluster rejects %s: %s", obj, msg)
	case apierrors.IsNotFound(err) && verb == "apply":
		e = slipway.Errorf(slipway.ENOTFOUND, "cannot %s %s: %s; create namespace %s first", verb, obj, msg, namespace)
	case apierrors.IsTooManyRequests(err) || apierrors.IsServerTimeout(err) || apierrors.IsTimeout(err) || apierrors.IsServiceUnavailable(err) || apierrors.IsInternalError(err):
		e = slipway.Errorf(slipway.EUNAVAILABLE, "the cluster could not %s %s now (%s); slipway retries", verb, obj, msg)
	default:
		return fmt.Errorf("%s %s: %w", verb, obj, err)
	}
	return fmt.Errorf("%w: %w", e, err)
}
