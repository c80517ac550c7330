package coalesce

import (
	"context"
	"slices"
	"testing"
	"time"
)

// TestEditsWaitingTogetherShareAWrite: the edits added within the window make one batch; those added
// while it is written make the next one, together.
func TestEditsWaitingTogetherShareAWrite(t *testing.T) {
	q := Queue[int]{Window: 200 * time.Millisecond, Fallback: time.Minute}
	release := make(chan struct{})
	batches := make(chan []int, 10)
	write := func(ctx context.Context, batch []*Request[int]) {
		var edits []int
		for _, r := range batch {
			edits = append(edits, r.Edit)
		}
		batches <- edits
		if edits[0] == 1 {
			<-release // the first write is slow
		}
		for _, r := range batch {
			r.Answer(nil)
		}
	}
	var answers []<-chan error
	for i := 1; i <= 3; i++ {
		answers = append(answers, q.Add(context.Background(), "nic", i, write))
	}
	if got := <-batches; !slices.Equal(got, []int{1, 2, 3}) {
		t.Fatalf("first batch %v, want [1 2 3]", got)
	}
	for i := 4; i <= 5; i++ {
		answers = append(answers, q.Add(context.Background(), "nic", i, write))
	}
	close(release)
	if got := <-batches; !slices.Equal(got, []int{4, 5}) {
		t.Fatalf("second batch %v, want [4 5]", got)
	}
	for i, a := range answers {
		if err := <-a; err != nil {
			t.Fatalf("edit %d: %v", i+1, err)
		}
	}
}

// TestBatchLastsAsLongAsItsLongestWaitingEdit: a batch's context ends at the latest deadline of its edits.
func TestBatchLastsAsLongAsItsLongestWaitingEdit(t *testing.T) {
	q := Queue[int]{Window: 100 * time.Millisecond, Fallback: time.Hour}
	got := make(chan time.Time, 1)
	write := func(ctx context.Context, batch []*Request[int]) {
		d, _ := ctx.Deadline()
		got <- d
		Answer(batch, nil)
	}
	short, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	q.Add(short, "nic", 1, write)
	before := time.Now()
	q.Add(context.Background(), "nic", 2, write) // no deadline: Fallback, an hour
	if d := <-got; d.Before(before.Add(59 * time.Minute)) {
		t.Fatalf("batch deadline %v, want about an hour from now (the edit without a deadline's Fallback)", time.Until(d))
	}
}
