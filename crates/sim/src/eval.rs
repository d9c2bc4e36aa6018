//! Scoring detections against a simulation's ground truth.
