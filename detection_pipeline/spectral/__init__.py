"""Spectral clusterability of the weight graph (docs/spectral.md; Filan et al., nn-clustering-pytorch).

graph.py: the weight graph of a LayeredNetwork (|w|, batch norm folded, normalised, stray components
removed); cluster.py: scikit-learn spectral clustering, the n-cut and the `spectral` method;
shuffles.py: the four weight shuffles; significance.py: one seeded shuffle test and its statistics.
"""
