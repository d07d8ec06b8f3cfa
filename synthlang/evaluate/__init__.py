"""Measuring the contribution of synthetic data (`synthc eval`) and the dataset report
(`synthc report`). scikit-learn and sklearn-crfsuite are imported inside these modules."""
