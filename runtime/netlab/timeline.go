package netlab

import (
	"fmt"
	"time"
)

// Handover finds in a capture the moment the Active role moved from one
// advertiser to another: the last advert from `from` (any priority, so a
// graceful stop's priority-0 advert counts) before the first advert from
// `to`, and that first advert. Failover time is to.Time - from.Time.
func Handover(ads []VRRPAdvert, from, to string) (last, first VRRPAdvert, err error) {
	haveLast := false
	for _, ad := range ads {
		switch ad.Src {
		case from:
			last, haveLast = ad, true
		case to:
			if ad.Priority == 0 {
				continue
			}
			if !haveLast {
				return last, first, fmt.Errorf("netlab: %s advertised before any advert from %s", to, from)
			}
			return last, ad, nil
		}
	}
	if !haveLast {
		return last, first, fmt.Errorf("netlab: no advert from %s", from)
	}
	return last, first, fmt.Errorf("netlab: no advert from %s after %s's last at %v", to, from, last.Time.Format(time.RFC3339Nano))
}

// MaxGap returns the longest time between consecutive adverts from src,
// and how many adverts src sent. Use it to show that a reload did not
// interrupt the Active's adverts.
func MaxGap(ads []VRRPAdvert, src string) (gap time.Duration, count int) {
	var prev time.Time
	for _, ad := range ads {
		if ad.Src != src {
			continue
		}
		if count > 0 {
			gap = max(gap, ad.Time.Sub(prev))
		}
		prev = ad.Time
		count++
	}
	return gap, count
}

// Sources returns the distinct advertisers in a capture, in order of first
// appearance, ignoring priority-0 adverts when activeOnly is set.
func Sources(ads []VRRPAdvert, activeOnly bool) []string {
	var srcs []string
	seen := map[string]bool{}
	for _, ad := range ads {
		if (activeOnly && ad.Priority == 0) || seen[ad.Src] {
			continue
		}
		seen[ad.Src] = true
		srcs = append(srcs, ad.Src)
	}
	return srcs
}
