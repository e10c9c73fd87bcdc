"""What the console reads: the gateway's views, the fault proxy, experiment progress, traces."""
