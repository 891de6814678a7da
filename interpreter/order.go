package interpreter

import "sort"

// ordered applies ev keeping the order in which the store accepted the
// instance's client messages. Work items are redelivered after a crash only
// when their lease runs out, so a later message can reach the engine before
// an earlier one; such a message waits in State.Early until the gap fills.
// A message already applied (a redelivery) changes nothing.
func (r *run) ordered(ev Event) (bool, error) {
	if ev.Seq == 0 {
		return r.dispatch(ev)
	}
	switch {
	case ev.Seq <= r.st.MsgSeq:
		return false, nil
	case ev.Seq > r.st.MsgSeq+1:
		for _, e := range r.st.Early {
			if e.Seq == ev.Seq {
				return false, nil
			}
		}
		r.st.Early = append(r.st.Early, ev)
		sort.Slice(r.st.Early, func(i, j int) bool { return r.st.Early[i].Seq < r.st.Early[j].Seq })
		return true, nil
	}
	if _, err := r.dispatch(ev); err != nil {
		return false, err
	}
	r.st.MsgSeq = ev.Seq
	for len(r.st.Early) > 0 && r.st.Early[0].Seq == r.st.MsgSeq+1 && !r.st.Status.Terminal() {
		next := r.st.Early[0]
		r.st.Early = r.st.Early[1:]
		r.now = next.Time.UTC()
		if _, err := r.dispatch(next); err != nil {
			return false, err
		}
		r.st.MsgSeq = next.Seq
	}
	if len(r.st.Early) == 0 {
		r.st.Early = nil
	}
	r.now = ev.Time.UTC()
	// Advancing the sequence is a change to persist even when the message
	// itself changed nothing (a second suspend, say).
	return true, nil
}
