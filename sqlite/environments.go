package sqlite

import (
	"context"

	"slipway.dev/slipway"
)

var _ slipway.EnvironmentStore = (*Store)(nil)

// Environments lists the environments stored, by name.
func (s *Store) Environments(ctx context.Context) ([]slipway.Environment, error) {
	return listNamed[slipway.Environment](ctx, s, "environments", "environments")
}

// PutEnvironments creates or replaces envs and stores events, in one transaction.
func (s *Store) PutEnvironments(ctx context.Context, envs []slipway.Environment, events []slipway.Event) error {
	return putNamed(ctx, s, "environments", "environments", envs, func(e slipway.Environment) string { return e.Name }, events)
}
