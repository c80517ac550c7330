package nodeagent

// mergeDiff walks two slices sorted by cmp in one pass: onlyWant gets every element of want that have
// lacks, onlyHave every element of have that want lacks. It costs O(len(have)+len(want)) with no
// hashing, which keeps a one-pod change on a node with 10,000 entries cheap.
func mergeDiff[T any](have, want []T, cmp func(a, b T) int, onlyWant, onlyHave func(T)) {
	i, j := 0, 0
	for i < len(have) && j < len(want) {
		switch c := cmp(have[i], want[j]); {
		case c < 0:
			onlyHave(have[i])
			i++
		case c > 0:
			onlyWant(want[j])
			j++
		default:
			i++
			j++
		}
	}
	for ; i < len(have); i++ {
		onlyHave(have[i])
	}
	for ; j < len(want); j++ {
		onlyWant(want[j])
	}
}
