package agent

import (
	"context"
	"log/slog"
)

// deferredLog holds the node's log records back until the effects of the
// step that made them are carried out: a takeover's advert must not wait
// for its "transition" line to be written.
type deferredLog struct {
	inner slog.Handler
	queue *[]deferredRecord
}

type deferredRecord struct {
	h slog.Handler
	r slog.Record
}

func newDeferredLog(inner slog.Handler) *deferredLog {
	return &deferredLog{inner: inner, queue: new([]deferredRecord)}
}

func (d *deferredLog) Enabled(ctx context.Context, l slog.Level) bool { return d.inner.Enabled(ctx, l) }

func (d *deferredLog) Handle(_ context.Context, r slog.Record) error {
	*d.queue = append(*d.queue, deferredRecord{h: d.inner, r: r.Clone()})
	return nil
}

func (d *deferredLog) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &deferredLog{inner: d.inner.WithAttrs(attrs), queue: d.queue}
}

func (d *deferredLog) WithGroup(name string) slog.Handler {
	return &deferredLog{inner: d.inner.WithGroup(name), queue: d.queue}
}

// flush writes what was held back, in order.
func (d *deferredLog) flush() {
	q := *d.queue
	for i, rec := range q {
		_ = rec.h.Handle(context.Background(), rec.r)
		q[i] = deferredRecord{}
	}
	*d.queue = q[:0]
}
