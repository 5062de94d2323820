"""Speed and scale benchmarks for qa (`make bench`); not part of `make test`."""
