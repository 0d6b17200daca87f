# Databricks notebook source
print("windows line endings")
