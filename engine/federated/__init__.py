"""Federated learning on chest X-rays: simulated hospitals, FedAvg through Flower, FedBN, baselines."""
