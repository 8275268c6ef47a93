/* placeholder replaced below */
void dk__fetch_stop(void *fetcher);
void dk__fetch_stop(void *fetcher) { (void)fetcher; }
