"""Shipped weights of the identity backbones (package data: ``*.pt``)."""
