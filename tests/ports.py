"""Ports every generated PE has, whatever its family: the sync domain's clock and reset, the
input strobes and the output strobe (one bit each)."""

CONTROL_PORTS = {"clk": 1, "rst": 1, "in_valid": 1, "in_first": 1, "out_valid": 1}
