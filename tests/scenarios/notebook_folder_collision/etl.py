# Databricks notebook source
print("etl")
