"""Pose estimators behind one interface (:class:`PoseEstimator`), picked by name with :func:`get_estimator`."""

from posevid.pose.estimators.base import EstimatorBase, PoseEstimator, available_estimators, get_estimator, register_estimator

__all__ = ["EstimatorBase", "PoseEstimator", "available_estimators", "get_estimator", "register_estimator"]
