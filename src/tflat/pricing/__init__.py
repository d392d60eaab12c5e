"""Pricing: a kernel goes in, a latency with an interval and a basis comes out.

* :mod:`tflat.pricing.base`: the contract every pricer keeps (Basis, Price, Pricer,
  EdgePricer, PricingContext, PartitionEdge);
* :mod:`tflat.pricing.learned`: the trained device predictors as pricers;
* :mod:`tflat.pricing.analytic`: kinds nobody measured (the device's launch, bandwidth and
  throughput rates); :mod:`tflat.pricing.cpu`: ops the delegate refuses, on the phone's CPU;
  :mod:`tflat.pricing.edges`: the copies at GPU<->CPU partition edges; each is built from its
  section of a bundle's ``"pricing"`` object with ``from_dict``;
* :mod:`tflat.pricing.registry`: which pricer prices which kernel on a device, built from its
  bundle (optional ``pricing`` sections plug further pricers in);
* :mod:`tflat.pricing.precision`: GPU prices moved to the math precision asked for, when the
  device's data was measured in the other one;
* :mod:`tflat.pricing.compose`: prices -> an :class:`~tflat.estimation.Estimate`;
* :mod:`tflat.pricing.predictors`: which predictor a device has (shipped or in the database).
"""
