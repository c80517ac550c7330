package simkit

import (
	"log/slog"
	"time"
)

// OrWallClock is clock, or time.Now when it is nil: a simulator's Options.Clock default.
func OrWallClock(clock func() time.Time) func() time.Time {
	if clock == nil {
		return time.Now
	}
	return clock
}

// OrQuiet is log, or a logger that discards everything when it is nil: a simulator's Options.Logger
// default.
func OrQuiet(log *slog.Logger) *slog.Logger {
	if log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return log
}
