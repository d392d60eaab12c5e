"""Pricing: a kernel goes in, a latency with an interval and a basis comes out.

* :mod:`tflat.pricing.base`: the contract every pricer keeps (Basis, Price, Pricer,
  EdgePricer, PricingContext, PartitionEdge);
* :mod:`tflat.pricing.learned`: the trained device predictors as pricers;
* :mod:`tflat.pricing.registry`: which pricer prices which kernel on a device, built from its
  bundle (optional ``pricing`` sections plug further pricers in);
* :mod:`tflat.pricing.precision`: GPU prices moved to the math precision asked for, when the
  device's data was measured in the other one;
* :mod:`tflat.pricing.compose`: prices -> an :class:`~tflat.estimation.Estimate`;
* :mod:`tflat.pricing.predictors`: which predictor a device has (shipped or in the database).
"""
