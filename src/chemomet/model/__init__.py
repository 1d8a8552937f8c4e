"""The mechanistic core: pure numerical functions over arrays of patients (see SCIENCE.md §2)."""

from chemomet.model.simulate import Outcome, simulate

__all__ = ["Outcome", "simulate"]
