package sqlite

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package when a test leaves a goroutine running: a closed Store must
// leave nothing behind.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
