"""Public measured data sets tflat trains and checks its predictors on."""
