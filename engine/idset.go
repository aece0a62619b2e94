package engine

// idSet remembers message IDs with bounded memory: two generations of at
// most limit IDs each; when the current one is full the older one is
// forgotten. forgotten counts IDs lost that way.
type idSet struct {
	cur, prev map[string]struct{}
	limit     int
	forgotten int64
}

func newIDSet(limit int) *idSet {
	return &idSet{cur: map[string]struct{}{}, prev: map[string]struct{}{}, limit: limit}
}

func (s *idSet) add(id string) {
	if len(s.cur) >= s.limit {
		s.forgotten += int64(len(s.prev))
		s.prev, s.cur = s.cur, make(map[string]struct{}, s.limit/4)
	}
	s.cur[id] = struct{}{}
}

// take reports whether id is in the set and removes it.
func (s *idSet) take(id string) bool {
	if _, ok := s.cur[id]; ok {
		delete(s.cur, id)
		return true
	}
	if _, ok := s.prev[id]; ok {
		delete(s.prev, id)
		return true
	}
	return false
}

// len is the number of IDs remembered.
func (s *idSet) len() int { return len(s.cur) + len(s.prev) }
