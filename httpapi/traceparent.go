package httpapi

import "net/http"

// traceParent returns the request's W3C traceparent header when it is well
// formed, else "": a malformed one is ignored, as the Trace Context
// recommendation asks, so the instance starts without a trace rather than
// the request failing. The instance keeps it (State.TraceParent) and its
// spans and http activities' requests join that trace.
func traceParent(h http.Header) string {
	v := h.Get("Traceparent") // canonical already: Get need not make it so, allocating
	// version "-" trace-id "-" parent-id "-" flags: 2+1+32+1+16+1+2 = 55;
	// a later version may append "-" and more fields.
	if len(v) < 55 || v[2] != '-' || v[35] != '-' || v[52] != '-' || (len(v) > 55 && v[55] != '-') {
		return ""
	}
	version, traceID, parentID, flags := v[0:2], v[3:35], v[36:52], v[53:55]
	if !lowerHex(version) || !lowerHex(traceID) || !lowerHex(parentID) || !lowerHex(flags) ||
		version == "ff" || (version == "00" && len(v) != 55) || allZero(traceID) || allZero(parentID) {
		return ""
	}
	return v[:55] // the fields this version of cairn knows
}

func lowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func allZero(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] != '0' {
			return false
		}
	}
	return true
}
