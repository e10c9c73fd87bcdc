"""`python -m bench`: what Breakwater costs and how it scales (see bench/README.md).

Beside the layers: benchmarks may use any library package (never the CLI), and no product
package imports them. Throughput windows use wrk (`bench.wrk`); what wrk cannot do, the
one-connection client (`bench.loadclient`); the fixed-size upstream is `bench.responder`.
"""
