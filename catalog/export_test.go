package catalog

// SetAfterClaim makes c run f between each save's claim and the reading
// that decides it, so that a test can hold saves until all have claimed.
func SetAfterClaim(c *Catalog, f func()) { c.afterClaim = f }
