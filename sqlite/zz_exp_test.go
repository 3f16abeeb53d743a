package sqlite

import (
	"context"
	"testing"
)

func TestZZFrames(t *testing.T) {
	s := openTest(t)
	ros := seed(t, s, 1000, false)
	if _, err := s.w.Exec(`PRAGMA wal_autocheckpoint=0`); err != nil {
		t.Fatal(err)
	}
	var a, b, c int
	s.w.QueryRow(`PRAGMA wal_checkpoint(TRUNCATE)`).Scan(&a, &b, &c)
	for i := 0; i < 100; i++ {
		r := &ros[(i*37)%len(ros)]
		ch := step(r, i)
		if err := s.Commit(context.Background(), ch); err != nil {
			t.Fatal(err)
		}
		r.Version = ch.Rollouts[0].Version
	}
	s.w.QueryRow(`PRAGMA wal_checkpoint(PASSIVE)`).Scan(&a, &b, &c)
	t.Logf("frames for 100 commits: %d", b)
}
