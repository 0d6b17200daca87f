# Databricks notebook source
print("step")
