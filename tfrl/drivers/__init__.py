"""Drivers: step environments with a policy, feed trajectories to observers."""

from tfrl.drivers.driver import Driver
