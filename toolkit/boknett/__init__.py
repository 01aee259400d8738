"""Boknett (Bokbasen, Norway): the report of changed book objects and their downloads.

The client (``connect``, ``objects``, ``changes``, ``download``) is still to come; the XML report parser
is :mod:`toolkit.boknett.report`.
"""
